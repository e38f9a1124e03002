"""Failures an upstream reports, as one family of domain errors.

The class is the kind: `proxy/problems.py` maps each class to a problem
response, and the upstream guard counts only `TransportFailure`s toward
"assumed offline". A repository that is broken on the remote side
(`RemoteFailed`) or an answer we refuse (`InvalidUpstreamResponse`) says
nothing about the health of the upstream as a whole, so it affects that
package alone.
"""

from __future__ import annotations

from typing import Any


def _rebuilt(kind: type[UpstreamError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UpstreamError(Exception):
    """Base class. `upstream` is the configured name; `url` never carries credentials."""

    def __init__(self, upstream: str, detail: str, url: str | None = None) -> None:
        super().__init__(detail)
        self.upstream = upstream
        self.detail = detail
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as it is, whatever a subclass's constructor takes: errors
        # cross from the git upstream's build processes.
        return (_rebuilt, (type(self), self.args, self.__dict__))


class PackageNotFound(UpstreamError):
    """The upstream does not know this package. Safe to cache briefly."""


class ReleaseNotFound(UpstreamError):
    """The package exists, but not this version. Safe to cache briefly."""


class InvalidRelease(UpstreamError):
    """The upstream has the version, but it cannot be served (no Package.swift, ...)."""


class UpstreamUnavailable(UpstreamError):
    """No usable answer this time. Transient: never cached as not found."""


class TransportFailure(UpstreamUnavailable):
    """The upstream host itself failed us: the only kind the guard counts."""


class Unreachable(TransportFailure):
    """Connection refused or reset, name resolution failed, TLS failed."""


class UpstreamTimeout(TransportFailure):
    """The upstream did not answer in time."""


class HostFailed(TransportFailure):
    """The host answered with a server error (5xx) or asked us to back off (429)."""


class UpstreamOffline(UpstreamUnavailable):
    """Not contacted: offline by policy, or assumed offline after transport failures."""


class RemoteFailed(UpstreamUnavailable):
    """The host answered, but could not serve this repository (a corrupt pack, ...)."""


class BuildInterrupted(UpstreamUnavailable):
    """The process fetching or building a release ended before it finished
    (killed, out of memory). Nothing is recorded; a retry builds it again."""


class InvalidUpstreamResponse(UpstreamUnavailable):
    """The upstream answered, but not as the registry protocol requires.

    Bad JSON, a missing `Content-Version: 1`, the wrong `Content-Type` (SE-0292
    3.5; SwiftPM's client refuses these too), a redirect loop (SE-0292 4.4.2).
    Never cached as not found, since the package may well exist.
    """


class RedirectRefused(InvalidUpstreamResponse):
    """A redirect or link pointed outside the upstream's own origin and its
    configured download hosts; nothing was fetched from there."""


class ArchiveChecksumMismatch(InvalidUpstreamResponse):
    """The archive's SHA-256 is not the checksum the upstream's metadata announces.

    The bytes are never stored: clients verify an archive against this checksum
    (SE-0292 4.4.1), so a proxy must verify before caching.
    """

    def __init__(
        self, upstream: str, detail: str, url: str | None = None, *, expected: str, actual: str
    ) -> None:
        super().__init__(upstream, detail, url)
        self.expected = expected
        self.actual = actual
