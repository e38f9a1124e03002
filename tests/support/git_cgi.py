"""C git's own smart-HTTP server, `git http-backend`, as a WSGI application.

A minimal CGI gateway (RFC 3875): one `git http-backend` process per request,
its whole output buffered and sent with a Content-Length, as a web server may
do. Like the dulwich backend, `/mona/LinkedList.git` and `/mona/LinkedList`
both reach `root/mona/LinkedList`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

# The repository part of the path, and what http-backend serves inside it
# (git-http-backend(1), "URL TRANSLATION"). A `.git` suffix is dropped so that
# http-backend finds a non-bare repository through its `/.git` lookup.
_REQUEST = re.compile(
    r"(?P<repository>/.+?)(?:\.git)?"
    r"(?P<service>/(?:info/refs|git-upload-pack|git-receive-pack|HEAD|objects/.+))"
)
# Request headers http-backend reads, as CGI meta-variables.
_PASSED = ("CONTENT_TYPE", "QUERY_STRING", "HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL")


def _cgi_environment(
    root: Path, environ: WSGIEnvironment, path: str, length: int
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # No user or system configuration changes what the server does.
        "HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": str(environ.get("REQUEST_METHOD", "GET")),
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(length),
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name in _PASSED:
        if name in environ:
            env[name] = str(environ[name])
    # git reads the protocol version from GIT_PROTOCOL, not HTTP_GIT_PROTOCOL.
    if "HTTP_GIT_PROTOCOL" in environ:
        env["GIT_PROTOCOL"] = str(environ["HTTP_GIT_PROTOCOL"])
    return env


def _split_cgi_output(output: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body of a CGI response (RFC 3875 6.2)."""
    head, separator, body = output.partition(b"\r\n\r\n")
    if not separator:
        # No header section: the script died before answering.
        return "502 Bad Gateway", [("Content-Length", "0")], b""
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = value.strip()
        elif name:
            headers.append((name, value.strip()))
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


def http_backend_app(root: Path) -> WSGIApplication:
    """Serve every repository under `root` with `git http-backend`."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        match = _REQUEST.fullmatch(str(environ.get("PATH_INFO", "")))
        if match is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        # dulwich's client sends request bodies with a Content-Length.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        path = match["repository"] + match["service"]
        result = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=_cgi_environment(root, environ, path, len(body)),
            capture_output=True,
            check=False,
        )
        # A failing upload-pack still wrote its answer (an ERR line or a fatal
        # sideband message) before exiting non-zero: send what it wrote.
        status, headers, payload = _split_cgi_output(result.stdout)
        start_response(status, headers)
        return [payload]

    return app
