"""Failures an upstream reports. The HTTP layer maps them to problem responses."""

from __future__ import annotations


class UpstreamError(Exception):
    """Base class. `upstream` is the configured name; `url` never carries credentials."""

    def __init__(self, upstream: str, detail: str, url: str | None = None) -> None:
        super().__init__(detail)
        self.upstream = upstream
        self.detail = detail
        self.url = url


class PackageNotFound(UpstreamError):
    """The upstream does not know this package. Safe to cache briefly."""


class ReleaseNotFound(UpstreamError):
    """The package exists, but not this version. Safe to cache briefly."""


class UpstreamUnavailable(UpstreamError):
    """Connection refused, DNS failure, 5xx. Transient: never cached as not found."""


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream did not answer in time."""


class InvalidRelease(UpstreamError):
    """The upstream has the version, but it cannot be served (no Package.swift, ...)."""


class InvalidUpstreamResponse(UpstreamUnavailable):
    """The upstream answered, but not as the registry protocol requires.

    Bad JSON, a missing `Content-Version: 1`, the wrong `Content-Type`, a
    redirect loop (protocol.md 6.2). Transient from our side: never cached as
    not found, since the package may well exist.
    """


class ArchiveChecksumMismatch(UpstreamUnavailable):
    """The archive's SHA-256 is not the checksum the upstream's metadata announces.

    The bytes are never stored (protocol.md 11.3): a proxy must verify before caching.
    """

    def __init__(
        self, upstream: str, detail: str, url: str | None = None, *, expected: str, actual: str
    ) -> None:
        super().__init__(upstream, detail, url)
        self.expected = expected
        self.actual = actual
