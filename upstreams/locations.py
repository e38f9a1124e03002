"""Source repository locations: SwiftPM's canonical form, redaction, URL forms.

Pure standard library: the HTTP layer uses these to answer `/identifiers`
without touching any upstream library.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# `:digits` right before the first `/` (or the end) is a port, as in SwiftPM's
# `removePortComponentIfPresent`; an scp-style `host:path` is not.
_PORT = re.compile(r"^([^/]*?):[0-9]+(?=/|$)")  # RFC 3986 3.2.3: ASCII digits
_USERINFO_IN_URL = re.compile(r"(?<=://)[^/@\s]*@")
# The remote forms SwiftPM looks up (its Workspace+Registry.swift); `file://`
# and paths are local.
_REMOTE_SCHEMES = frozenset({"http", "https", "ssh"})
# git's scp-like ssh syntax, `user@host:path` (git-clone(1), "GIT URLS").
_SCP = re.compile(
    r"^(?P<user>[A-Za-z0-9._~-]+)(?::[^@/]*)?@"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):"
    r"(?P<path>[^:]\S*)$"
)


@dataclass(frozen=True, slots=True)
class Location:
    """A repository location split into host and path segments, case preserved.

    Percent-decoded, empty segments collapsed, a trailing `.git` removed from
    the last segment; scheme, credentials, port, query and fragment dropped.
    """

    host: str
    segments: tuple[str, ...]
    # File URLs and absolute paths keep a leading `/`, as SwiftPM does.
    absolute: bool = False

    @property
    def canonical(self) -> str:
        text = "/".join((self.host, *self.segments)) if self.host else "/".join(self.segments)
        if self.absolute:
            text = "/" + text
        return unicodedata.normalize("NFC", text).lower()


def _decode_segment(segment: str) -> str:
    # SwiftPM keeps a segment as written when its percent-encoding is invalid;
    # so is one holding a lone surrogate (from a JSON `\ud800` escape), which
    # has no UTF-8 form to decode from.
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeError:
        return segment


def split_location(url: str) -> Location:
    """SwiftPM's CanonicalPackageLocation steps, without lower-casing."""
    text = unicodedata.normalize("NFC", url.strip())
    scheme_match = _SCHEME.match(text)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    if scheme_match:
        text = text[scheme_match.end() :]
    # Userinfo ends at the last `@` before the first `/`.
    slash = text.find("/")
    authority = text if slash < 0 else text[:slash]
    at = authority.rfind("@")
    if at >= 0:
        user = authority[:at].split(":", 1)[0]
        text = text[at + 1 :]
        text = text.replace("/~/", f"/~{user}/", 1)
    text = _PORT.sub(r"\1", text, count=1)
    text = text.split("#", 1)[0].split("?", 1)[0]
    if scheme in (None, "ssh"):
        # scp-style `git@host:owner/repo.git`: the first `:` before any `/`.
        colon, slash = text.find(":"), text.find("/")
        if colon >= 0 and (slash < 0 or colon < slash):
            text = text[:colon] + "/" + text[colon + 1 :]
    absolute = scheme == "file" or url.strip().startswith("/")
    parts = [_decode_segment(part) for part in text.split("/") if part]
    if parts:
        parts[-1] = _strip_git_suffix(parts[-1])
    if absolute:
        return Location("", tuple(parts), absolute=True)
    if not parts:
        return Location("", ())
    return Location(parts[0], tuple(parts[1:]))


def _strip_git_suffix(segment: str) -> str:
    # Hosts treat `Repo.GIT` like `Repo.git`; SwiftPM lower-cases before comparing.
    return segment[:-4] if segment.lower().endswith(".git") else segment


def canonical_location(url: str) -> str:
    """The form SwiftPM compares package locations by: `github.com/mona/linkedlist`."""
    return split_location(url).canonical


def redact(url: str) -> str:
    """`url` without userinfo, so credentials never reach logs or clients.

    The authority ends at the first `/`, `?` or `#` (RFC 3986 3.2) and its
    userinfo at the last `@` in it: a password holding an unencoded `@` or a
    space is removed whole. scp-style `user:secret@host:path` has no scheme
    to anchor on and is read the same way.
    """
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    rest = url[start:]
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    return url if at < 0 else url[:start] + rest[at + 1 :]


def scrub(text: str) -> str:
    """Any text (an error message) with userinfo removed from URLs inside it."""
    return _USERINFO_IN_URL.sub("", text)


def ssh_form(url: str) -> str | None:
    """`git@host:owner/repo.git` for an http(s) repository URL, else None."""
    scheme = _SCHEME.match(url)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        return None
    location = split_location(url)
    if not location.host or not location.segments:
        return None
    path = "/".join(location.segments)
    return f"git@{location.host}:{path}.git"


def lookup_form(url: str) -> str | None:
    """`url` as it may be sent to a registry's `/identifiers`, or None.

    Only the remote forms SwiftPM looks up (its Workspace+Registry.swift):
    http(s) and `ssh://` URLs and scp-style `git@host:owner/repo.git`, each
    with a host and a path. Credentials never go out: an http(s) URL loses all its
    userinfo, an ssh one its password, keeping the login name, since that is
    how repository URLs are published (`git@github.com:mona/LinkedList.git`).
    """
    if not url or any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        return None
    scheme = _SCHEME.match(url)
    if scheme is None:
        scp = _SCP.match(url)
        return None if scp is None else f"{scp['user']}@{scp['host']}:{scp['path']}"
    name = scheme.group(1).lower()
    if name not in _REMOTE_SCHEMES:
        return None
    rest = url[scheme.end() :]
    # The authority ends at the first `/`, `?` or `#` (RFC 3986 3.2).
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    userinfo, at, host_port = rest[:end].rpartition("@")
    try:
        parts = urlsplit(f"{name}://{host_port}{rest[end:]}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return None
    if not parts.hostname or not parts.path.strip("/"):
        return None
    login = userinfo.split(":", 1)[0] if at and name == "ssh" else ""
    return f"{url[: scheme.end()]}{login}{'@' if login else ''}{host_port}{rest[end:]}"
