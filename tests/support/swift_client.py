"""Driving the real `swift` client with all of its state private to one test."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

SWIFT_TIMEOUT = 900


class SwiftClient:
    """Runs `swift` with cache, security, config and HOME isolated under `home`,
    so nothing is answered from a cache left by another run."""

    def __init__(self, swift: str, home: Path) -> None:
        self.swift = swift
        self.home = home
        self.state = [
            "--cache-path", str(home / "cache"),
            "--security-path", str(home / "security"),
            "--config-path", str(home / "config"),
        ]  # fmt: skip

    async def run(self, *args: str, cwd: Path) -> str:
        status, text = await self.attempt(*args, cwd=cwd)
        assert status == 0, f"swift {' '.join(args)} failed:\n{text}"
        return text

    async def attempt(self, *args: str, cwd: Path) -> tuple[int, str]:
        """Run `swift` and return its exit status and output, whatever the status."""
        env = {
            **os.environ,
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / "xdg-cache"),
            "XDG_CONFIG_HOME": str(self.home / "xdg-config"),
        }
        process = await asyncio.create_subprocess_exec(
            self.swift,
            *args,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), SWIFT_TIMEOUT)
        assert process.returncode is not None
        return process.returncode, output.decode("utf-8", "replace")

    async def build_and_run(
        self, package: Path, scratch: Path, product: str = "App", *options: str
    ) -> str:
        """`swift build [options]`, then the built executable's output."""
        await self.run("build", *self.state, "--scratch-path", str(scratch), *options, cwd=package)
        return await self.run(
            "run",
            *self.state,
            "--scratch-path",
            str(scratch),
            "--skip-build",
            product,
            cwd=package,
        )


def record_requests(app: web.Application) -> list[str]:
    """Append `METHOD path?query status` for every request the app answers."""
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        seen.append(f"{request.method} {request.path_qs} {response.status}")
        return response

    app.middlewares.append(record)
    return seen


def registry_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")
