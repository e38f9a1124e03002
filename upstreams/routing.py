"""Which upstreams may serve a package: an ordered list of scope rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from upstreams.base import Upstream
from upstreams.model import PackageId


@dataclass(frozen=True, slots=True)
class Route:
    scopes: tuple[str, ...]
    upstream: Upstream

    def matches(self, package: PackageId) -> bool:
        scope = package.scope.lower()
        return any(fnmatchcase(scope, pattern.lower()) for pattern in self.scopes)


class Router:
    """Candidates are tried in rule order; the first that knows the package wins."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)

    def candidates(self, package: PackageId) -> list[Upstream]:
        chosen: list[Upstream] = []
        for route in self._routes:
            wanted = route.matches(package) and route.upstream.serves(package)
            if wanted and route.upstream not in chosen:
                chosen.append(route.upstream)
        return chosen

    @property
    def upstreams(self) -> list[Upstream]:
        unique: list[Upstream] = []
        for route in self._routes:
            if route.upstream not in unique:
                unique.append(route.upstream)
        return unique
