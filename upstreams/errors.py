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
