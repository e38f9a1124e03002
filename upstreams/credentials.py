"""Credentials spm-proxy presents to an upstream. Never printed, never logged."""

from __future__ import annotations

import base64
import netrc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: Literal["basic", "bearer"]
    secret: str = field(repr=False)
    username: str = ""

    def authorization(self) -> str:
        """The `Authorization` header value."""
        if self.kind == "bearer":
            return f"Bearer {self.secret}"
        pair = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(kind={self.kind!r}, username={self.username!r}, secret='***')"

    __str__ = __repr__


def from_netrc(path: Path, host: str) -> Credentials | None:
    """Basic credentials for `host` from a netrc file, as git and curl read it."""
    entry = netrc.netrc(str(path)).authenticators(host)
    if entry is None:
        return None
    login, _account, password = entry
    return Credentials("basic", password or "", login or "")
