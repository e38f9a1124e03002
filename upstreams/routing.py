"""Which upstreams may serve a package: ordered rules from scopes to upstreams.

A rule naming exact packages beats every scope rule; among scope rules the
first match wins. Within a rule, upstreams are tried in order and the next one
is asked only when the previous one does not know the package (404): a
failing upstream never lets a later one answer in its place, which would
invite dependency confusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from upstreams.base import Upstream
from upstreams.model import PackageId


@dataclass(frozen=True, slots=True)
class Route:
    upstreams: tuple[Upstream, ...]
    scopes: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    # Private scopes are served only from what the proxy holds itself.
    private: bool = False

    def names(self, package: PackageId) -> bool:
        return package.key in {identity.lower() for identity in self.packages}

    def covers_scope(self, package: PackageId) -> bool:
        scope = package.scope.lower()
        return any(fnmatchcase(scope, pattern.lower()) for pattern in self.scopes)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    def route_for(self, package: PackageId) -> Route | None:
        for route in self._routes:
            if route.names(package):
                return route
        for route in self._routes:
            if route.covers_scope(package):
                return route
        return None

    def candidates(self, package: PackageId) -> list[Upstream]:
        route = self.route_for(package)
        if route is None or route.private:
            return []
        return [upstream for upstream in route.upstreams if upstream.serves(package)]

    @property
    def upstreams(self) -> list[Upstream]:
        unique: list[Upstream] = []
        for route in self._routes:
            for upstream in route.upstreams:
                if upstream not in unique:
                    unique.append(upstream)
        return unique
