"""aiohttp's request failures in plain words, each sorted into the error family.

A connection that could not be made or was lost (refused, reset, name
resolution, TLS) is `Unreachable`: the host failed us, and the upstream guard
counts it. An answer that is not HTTP at all is `InvalidUpstreamResponse`.
The reason names the host and the operating system's own words, never our
request headers: some aiohttp errors carry them, so none is chained.
"""

from __future__ import annotations

import os
import re
import ssl

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError
from yarl import URL

from upstreams.errors import InvalidUpstreamResponse, Unreachable, UpstreamError

# What an upstream may add (an HTTP parser message quoting its bytes) is cut here.
_REASON_LIMIT = 120


# OpenSSL's wrapping: `[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)`.
_OPENSSL_NOISE = re.compile(r"^\[[A-Z]+: [A-Z_]+\]\s*|\s*\(_ssl\.c:\d+\)")


def _tidy(text: str) -> str:
    """One line, without the brackets and trailing colons library messages wrap it in."""
    first = " ".join(_OPENSSL_NOISE.sub("", text.split("\n", 1)[0]).split())
    return first.strip(" []():;,.")[:_REASON_LIMIT]


def _host(host: str | None, port: int | None) -> str:
    name = host or "the upstream"
    if ":" in name:
        name = f"[{name}]"
    return name if port is None else f"{name}:{port}"


def _os_words(error: BaseException | None) -> str:
    """`Connection refused`, `Name or service not known`, `wrong version number`."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return _tidy(error.verify_message)
    if isinstance(error, ssl.SSLError):
        # Its errno is OpenSSL's, not the operating system's.
        # `reason` is set by the ssl module's C code, not by every constructor.
        reason = getattr(error, "reason", None)
        if isinstance(reason, str) and reason:
            return reason.lower().replace("_", " ")
        return _tidy(error.strerror or str(error))
    if isinstance(error, OSError):
        if error.errno is not None and error.errno > 0:
            # asyncio's own strerror ("Connect call failed (...)") hides the cause.
            return os.strerror(error.errno)
        if error.strerror:
            return _tidy(error.strerror)
    return _tidy(str(error)) if error is not None and str(error) else "no reason given"


def _connector_reason(error: aiohttp.ClientConnectorError) -> str:
    """Connecting failed: no name, no listener, no TLS session."""
    where = _host(error.host, error.port)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {where} not accepted ({_os_words(error.certificate_error)})"
    if isinstance(error, aiohttp.ClientSSLError):
        return f"TLS handshake with {where} failed ({_os_words(error.os_error)})"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {error.host} ({_os_words(error.os_error)})"
    return f"cannot connect to host {where} ({_os_words(error.os_error)})"


def _connection_reason(error: aiohttp.ClientConnectionError, url: URL) -> str:
    """An open connection was lost: closed or reset by the host."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return _connector_reason(error)
    where = _host(url.raw_host, url.port)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection before answering in full"
    cause = error if isinstance(error, OSError) else error.__cause__ or error
    return f"connection to {where} failed ({_os_words(cause)})"


def classify(error: aiohttp.ClientError, url: URL, where: str) -> tuple[type[UpstreamError], str]:
    """The error class for a failed request to `url` (`where` when displayed),
    and the reason in words. Timeouts are the caller's: they are `TimeoutError`s.
    """
    if isinstance(error, aiohttp.ClientConnectionError):
        return Unreachable, _connection_reason(error, url)
    if isinstance(error, aiohttp.ClientPayloadError):
        if isinstance(error.__cause__, ContentEncodingError):
            return InvalidUpstreamResponse, f"the response from {where} cannot be decoded"
        # Content-Length or chunked framing cut short: the connection was lost.
        return Unreachable, f"the response from {where} broke off before its end"
    if isinstance(error, aiohttp.ClientResponseError):
        # aiohttp's HTTP parser refused the answer (a bad status line or header).
        return (
            InvalidUpstreamResponse,
            f"{where} answered with invalid HTTP ({_tidy(error.message)})",
        )
    return InvalidUpstreamResponse, f"request to {where} failed ({type(error).__name__})"
