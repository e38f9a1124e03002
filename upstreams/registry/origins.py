"""Where a registry upstream may be followed to: its own origin and its download hosts.

A registry answers with URLs of its own choosing: `Location` on a redirect
(SE-0292 4.4.2: an archive may be a `303` to a CDN), `rel="next"` pages
(4.1) and alternate manifest links (4.3). Followed blindly, they make the
proxy fetch from any host its network can reach (cloud metadata endpoints,
services on loopback). So only two kinds of target are fetched: the
registry's own origin (RFC 6454: scheme, host, port of its configured URL)
and the download hosts configured for it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

_SCHEMES = frozenset({"http", "https"})
_WILDCARD = "*."
# Long enough to recognise a target, short enough for a log line.
_TARGET_LIMIT = 200


def _normal_host(host: str) -> str:
    # `cdn.example.com.` is the same DNS name as `cdn.example.com`.
    return host.lower().rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Origin:
    """An origin, or with `wildcard` every origin on a subdomain of `host`.

    Hosts are kept lower-cased and IDNA-encoded, as yarl gives them for a
    target, so both sides compare in the same form.
    """

    scheme: str
    host: str
    port: int
    wildcard: bool = False

    @classmethod
    def of(cls, url: URL) -> Origin:
        """The origin of an absolute http(s) URL."""
        if url.scheme not in _SCHEMES or not url.raw_host or url.port is None:
            raise ValueError(f"{url} is not an absolute http(s) URL")
        return cls(url.scheme, _normal_host(url.raw_host), url.port)

    @classmethod
    def parse(cls, text: str) -> Origin:
        """A configured download host: `https://cdn.example.com`,
        `https://objects.example.com:8443`, `https://*.cloudfront.net`,
        `http://minio.internal:9000`; a bare host means https."""
        written = text.strip()
        if "://" not in written:
            written = "https://" + written
        scheme, _, rest = written.partition("://")
        wildcard = rest.startswith(_WILDCARD)
        if wildcard:
            rest = rest.removeprefix(_WILDCARD)
        try:
            url = URL(f"{scheme}://{rest}")
        except ValueError as error:
            raise ValueError(f"{text!r} is not a valid origin ({error})") from None
        if url.scheme not in _SCHEMES:
            raise ValueError(f"{text!r} must be an https:// (or explicitly http://) origin")
        if url.user is not None or url.password is not None:
            raise ValueError(f"{text!r} must not carry credentials")
        if url.raw_path not in ("", "/") or url.raw_query_string or url.raw_fragment:
            raise ValueError(f"{text!r} must be an origin only, without path, query or fragment")
        host = _normal_host(url.raw_host or "")
        if not host or "*" in host:
            raise ValueError(f"{text!r} needs a host; a wildcard may only be a leading '*.'")
        if wildcard:
            labels = host.split(".")
            # `*.com` would admit every host under a top-level domain, and a
            # wildcard over an address (`*.0.0.1`) is never meant.
            if len(labels) < 2 or _is_ip(host) or labels[-1].isdigit():
                raise ValueError(f"{text!r}: a wildcard needs a domain of at least two labels")
        assert url.port is not None  # an http(s) URL always has one (a default)
        return cls(url.scheme, host, url.port, wildcard)

    def admits(self, url: URL) -> bool:
        if url.scheme != self.scheme or url.port != self.port or not url.raw_host:
            return False
        host = _normal_host(url.raw_host)
        if not self.wildcard:
            return host == self.host
        # As CSP host-source wildcards: any depth of subdomain, never the
        # domain itself, never an address.
        return host.endswith("." + self.host) and not _is_ip(host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{_WILDCARD if self.wildcard else ''}{host}{port}"


class Origins:
    """The registry's own origin, which gets our credentials, and its download hosts."""

    def __init__(self, own: URL, download_hosts: Iterable[str] = ()) -> None:
        self.own = Origin.of(own)
        self.download_hosts = tuple(Origin.parse(text) for text in download_hosts)

    def is_own(self, url: URL) -> bool:
        return self.own.admits(url)

    def admits(self, url: URL) -> bool:
        return self.is_own(url) or any(host.admits(url) for host in self.download_hosts)


def target_text(url: URL) -> str:
    """A URL fit to name in errors and logs: no userinfo, no query, no fragment,
    since signed URLs carry their token there."""
    if url.is_absolute():
        url = url.with_user(None)
    text = str(url.with_query(None).with_fragment(None))
    return text if len(text) <= _TARGET_LIMIT else text[:_TARGET_LIMIT] + "..."
