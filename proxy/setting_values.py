"""What one setting's value may be, beyond its type: URLs, hosts, templates, paths.

Each function returns the value (normalised) or raises `ValueError` with a
message that pydantic puts after the key's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from yarl import URL

from upstreams.registry.origins import Origin


def no_controls(value: str) -> str:
    # A value that reaches a request line, a header or a log line must not break it.
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


def no_blanks(value: str) -> str:
    # Neither URLs (RFC 3986 2) nor host names hold spaces or control characters.
    if any(char.isspace() for char in no_controls(value)):
        raise ValueError("must not contain spaces")
    return value


def absolute_http_url(value: str) -> str:
    """An absolute http(s) URL with a host (RFC 3986 4.3), without a trailing `/`."""
    no_blanks(value)
    try:
        url = URL(value)
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value.rstrip("/")


def repository_url_template(value: str) -> str:
    """A git URL template naming both placeholders (`https://h/{scope}/{name}.git`,
    `git@h:{scope}/{name}.git`) that renders to a URL or scp-style location."""
    if "{scope}" not in value or "{name}" not in value:
        raise ValueError("must contain both {scope} and {name}")
    no_controls(value)
    try:
        urlsplit(value.replace("{scope}", "scope").replace("{name}", "name"))
    except ValueError as exc:
        raise ValueError(f"is not a repository URL ({exc})") from None
    return value


def file_system_path(value: Path) -> Path:
    """A path this system can name a file by."""
    if "\x00" in str(value):
        raise ValueError("a path cannot contain a NUL character")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        # A lone surrogate (a JSON `\ud800` in SPM_PROXY_SERVER) has no byte form.
        raise ValueError("is not a file name this system can encode") from None
    return value


def download_host(value: str) -> str:
    return str(Origin.parse(value))
