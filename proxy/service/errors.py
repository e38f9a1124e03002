"""The service's domain errors. `proxy/problems.py` turns each class into a problem."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    """Nothing to serve: unknown to every upstream routing allows, or no upstream may be asked."""


class ChecksumConflict(ServiceError):
    """Bytes offered for a release differ from what the ledger recorded: refused."""

    def __init__(
        self, *, package: str, version: str, resource: str, recorded: str, actual: str
    ) -> None:
        super().__init__(
            f"{resource} of {package} {version} changed upstream: the ledger recorded checksum "
            f"{recorded}, the upstream now gives {actual}; the recorded release is immutable "
            "and the new bytes are refused"
        )
        self.package = package
        self.version = version
        self.resource = resource
        self.recorded = recorded
        self.actual = actual


class FillStillRunning(ServiceError):
    """The client waited as long as it may; the fill goes on and a retry will find it."""

    def __init__(self, what: str, waited: float) -> None:
        super().__init__(
            f"{what} is still being fetched after {waited:g} s; it goes on in the background, "
            "retry shortly"
        )
        self.waited = waited


class FillTimedOut(ServiceError):
    """A fill ran past its own deadline and was stopped."""

    def __init__(self, what: str, deadline: float) -> None:
        super().__init__(f"fetching {what} from the upstream did not finish within {deadline:g} s")
        self.deadline = deadline


class ContentUnavailable(ServiceError):
    """A release is recorded, but its stored bytes cannot be had right now."""
