"""Serving an archive blob: conditional requests, ranges, sendfile or a stream.

The `ETag` is the archive's checksum and `Last-Modified` its publication time,
so conditional requests (RFC 9110 section 13) are answered here against those,
before aiohttp's file response (which knows only the file's own stat) sees
the request; it then does what it does best, sendfile and byte ranges.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from proxy import conditions, protocol
from proxy.service.registry import ArchiveAnswer

_CONDITIONALS = (
    hdrs.IF_MATCH,
    hdrs.IF_NONE_MATCH,
    hdrs.IF_MODIFIED_SINCE,
    hdrs.IF_UNMODIFIED_SINCE,
    hdrs.IF_RANGE,
)


class BlobFileResponse(web.FileResponse):
    """A file response whose validators are the blob's, not the file's (see `fix_validators`).

    It is prepared against `plain`, the request without its conditional
    headers, which were already answered against the blob's validators.
    """

    def __init__(self, answer: ArchiveAnswer, headers: dict[str, str], plain: web.Request) -> None:
        assert answer.blob.local_path is not None
        super().__init__(answer.blob.local_path, headers=headers)
        self._plain = plain
        self.validators = {
            hdrs.ETAG: headers["ETag"],
            hdrs.LAST_MODIFIED: headers["Last-Modified"],
        }

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        return await super().prepare(self._plain)


def fix_validators(response: web.StreamResponse) -> None:
    """Called as the response is prepared: aiohttp's file response sets validators
    from the file's stat; a blob's are its checksum and publication time."""
    if isinstance(response, BlobFileResponse):
        response.headers.update(response.validators)


async def send_archive(
    request: web.Request, answer: ArchiveAnswer, headers: dict[str, str]
) -> web.StreamResponse:
    etag, published = headers["ETag"], headers["Last-Modified"]
    outcome = conditions.evaluate_conditions(
        if_match=request.headers.get(hdrs.IF_MATCH),
        if_none_match=request.headers.get(hdrs.IF_NONE_MATCH),
        if_modified_since=_date(request.headers.get(hdrs.IF_MODIFIED_SINCE)),
        if_unmodified_since=_date(request.headers.get(hdrs.IF_UNMODIFIED_SINCE)),
        if_range=request.headers.get(hdrs.IF_RANGE),
        etag=etag,
        last_modified=_date(published),
    )
    if outcome is conditions.Condition.NOT_MODIFIED:
        return web.Response(status=304, headers=headers)
    if outcome is conditions.Condition.FAILED:
        raise protocol.PreconditionFailed(f"the archive's entity tag is {etag}")
    # Header names are case-insensitive (RFC 9110 5.1): `if-range` is If-Range.
    stripped = CIMultiDict(request.headers)
    for name in _CONDITIONALS:
        stripped.popall(name, None)
    if outcome is conditions.Condition.WHOLE:
        stripped.popall(hdrs.RANGE, None)
    requested = stripped.get(hdrs.RANGE)
    if requested is not None:
        start, end = conditions.byte_range(requested, answer.blob.size)
        # aiohttp reads Range once more, with its own rules: it gets the range
        # as understood here, so both always agree.
        stripped[hdrs.RANGE] = f"bytes={start}-{end - 1}"
    plain = request.clone(headers=stripped)
    if answer.blob.local_path is not None:
        return BlobFileResponse(answer, headers, plain)
    return await _stream(plain, answer, headers)


async def _stream(
    request: web.Request, answer: ArchiveAnswer, headers: dict[str, str]
) -> web.StreamResponse:
    """Storage without local files: the bytes stream through the proxy."""
    start, end = conditions.byte_range(request.headers.get(hdrs.RANGE), answer.blob.size)
    response = web.StreamResponse(status=200 if (start, end) == (0, answer.blob.size) else 206)
    response.headers.update(headers)
    response.content_length = end - start
    if response.status == 206:
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{answer.blob.size}"
    await response.prepare(request)
    if request.method != hdrs.METH_HEAD:
        async for chunk in answer.blob.chunks(start, end):
            await response.write(chunk)
    await response.write_eof()
    return response


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
