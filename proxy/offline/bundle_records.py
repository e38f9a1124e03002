"""Whether a record read from a bundle can be served as the protocol requires.

A bundle is input from elsewhere: its release records and lists become the
answers of an offline proxy, and some of their values go into response
headers (`Last-Modified`, `Link`, `X-Swift-Package-Signature`) and bodies
SwiftPM decodes strictly. Each check raises `UnservableRecord` with the reason;
`bundle_layout` names the bundle entry.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from cache.index import ReleaseList, ReleaseRecord
from upstreams.model import InvalidVersion, Version, is_manifest_filename, version_triple

# Whole-second UTC, as every spm-proxy writes it (older Foundation `.iso8601`
# decoders refuse fractional seconds); ASCII digits, which `strptime` alone
# would not insist on.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# SE-0391: a format name such as `cms-1.0.0`, and standard base64 (RFC 4648 4).
_SIGNATURE_FORMAT = re.compile(r"[A-Za-z0-9.+-]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# The times whole-second UTC can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_EARLIEST = -62_135_596_800
_LATEST = 253_402_300_799
# A URI in a Link header's `<...>` (RFC 3986 2, RFC 8288 3): printable ASCII
# without spaces, quotes or angle brackets.
_LINK_TARGET = re.compile(r"[!#-;=?-~]+")


class UnservableRecord(ValueError):
    """A record whose values an offline proxy could not serve."""


def check_release(release: ReleaseRecord) -> None:
    if not isinstance(release.published_at, str) or not _TIMESTAMP.fullmatch(release.published_at):
        raise UnservableRecord(f"published_at {release.published_at!r} is not whole-second UTC")
    try:
        datetime.strptime(release.published_at, _TIMESTAMP_FORMAT)
    except ValueError:
        raise UnservableRecord(f"published_at {release.published_at!r} is no date") from None
    if not isinstance(release.metadata, dict):
        raise UnservableRecord("its metadata is not an object")
    if not isinstance(release.upstream, str):
        raise UnservableRecord("its upstream is not a name")
    for manifest in release.manifests:
        if not isinstance(manifest.filename, str) or not is_manifest_filename(manifest.filename):
            raise UnservableRecord(f"{manifest.filename!r} is not a manifest file name")
        tools = manifest.tools_version
        if tools is not None and (not isinstance(tools, str) or version_triple(tools) is None):
            raise UnservableRecord(f"{manifest.filename}: tools version {tools!r} is no version")
    _check_signing(release.signing)


def _check_signing(signing: object) -> None:
    if signing is None:
        return
    if not isinstance(signing, dict) or set(signing) != {
        "signatureFormat",
        "signatureBase64Encoded",
    }:
        raise UnservableRecord("its signing is not {signatureFormat, signatureBase64Encoded}")
    form, signature = signing["signatureFormat"], signing["signatureBase64Encoded"]
    if not isinstance(form, str) or not _SIGNATURE_FORMAT.fullmatch(form):
        raise UnservableRecord(f"signature format {form!r} is not a format name")
    if not isinstance(signature, str) or not _BASE64.fullmatch(signature):
        raise UnservableRecord("its signature is not base64")


def check_listing(listing: ReleaseList) -> None:
    if not isinstance(listing.upstream, str):
        raise UnservableRecord("its upstream is not a name")
    fetched_at = listing.fetched_at
    if (
        isinstance(fetched_at, bool)
        or not isinstance(fetched_at, int | float)
        or not math.isfinite(fetched_at)
    ):
        raise UnservableRecord(f"fetched_at {fetched_at!r} is not a time")
    for url in listing.repository_urls:
        if not isinstance(url, str) or not _LINK_TARGET.fullmatch(url):
            raise UnservableRecord(f"repository URL {url!r} cannot be a Link target")
    if not isinstance(listing.problems, dict):
        raise UnservableRecord("its problems are not an object")
    for version, problem in listing.problems.items():
        # SwiftPM's client refuses the whole list for a problem without a detail
        # (SE-0292 4.1; problem details as in SE-0292 3.3).
        if not isinstance(problem, dict) or not isinstance(problem.get("detail"), str):
            raise UnservableRecord(f"the problem of {version} has no detail")
    _check_held(listing)


def _check_held(listing: ReleaseList) -> None:
    """What the proxy noted about releases an upstream lost or could not serve:
    listed by version, each with a detail and a time that can be written."""
    notes = [*listing.vanished.values(), *([listing.gone] if listing.gone else [])]
    for note in notes:
        if not isinstance(note.detail, str) or not _EARLIEST <= note.since <= _LATEST:
            raise UnservableRecord(f"a vanished note ({note.since!r}) is not a time and detail")
    for version, detail in listing.unservable.items():
        if not isinstance(detail, str):
            raise UnservableRecord(f"the unservable note of {version!r} has no detail")
    for version in (*listing.vanished, *listing.unservable):
        try:
            Version.parse(version)
        except (InvalidVersion, TypeError):
            raise UnservableRecord(f"{version!r} is not a version") from None
