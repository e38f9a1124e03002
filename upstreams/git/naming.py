"""Identity <-> repository naming: URL templates and registry-safe names.

A repository has two locations: the public one its packages' manifests name
(`https://github.com/apple/swift-numerics.git`), which identities, `/identifiers`
and `repositoryURLs` speak about, and the one spm-proxy fetches from, an
internal mirror where the public host is out of reach. Without a mirror they
are the same URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from upstreams.locations import canonical_location, split_location
from upstreams.model import PackageId, is_valid_name, is_valid_scope

_PLACEHOLDER = re.compile(r"\{(scope|name)\}")


def package_name_for_repository(repository: str) -> str | None:
    """Registry name for a repository name: `GRDB.swift(.git)` -> `GRDB_swift`.

    Registry names cannot contain `.`; `_` is the convention other registries use.
    """
    if repository.lower().endswith(".git"):
        repository = repository[:-4]
    name = repository.replace(".", "_")
    return name if is_valid_name(name) else None


def repository_name_candidates(name: str) -> list[str]:
    """Repository names a registry name may stand for, most likely first."""
    candidates = [name]
    if "_" in name:
        candidates.append(name.replace("_", "."))
    return candidates


def _segment_pattern(segment: str) -> re.Pattern[str]:
    pattern = ""
    position = 0
    seen: set[str] = set()
    for match in _PLACEHOLDER.finditer(segment):
        pattern += re.escape(segment[position : match.start()])
        placeholder = match.group(1)
        # A placeholder may appear twice (`{name}-{name}`): the same text again.
        pattern += f"(?P={placeholder})" if placeholder in seen else f"(?P<{placeholder}>.+?)"
        seen.add(placeholder)
        position = match.end()
    pattern += re.escape(segment[position:])
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RepositoryTemplate:
    """`https://github.com/{scope}/{name}.git`: renders and recognises repository URLs."""

    template: str

    def render(self, scope: str, repository: str) -> str:
        # Plain replacement, not str.format: a template may contain other braces.
        return self.template.replace("{scope}", scope).replace("{name}", repository)

    def match(self, url: str) -> tuple[str, str] | None:
        """`(scope, repository name)` with the casing of `url`, or None.

        Compared on SwiftPM's canonical form, so scheme, credentials, port,
        `.git` and letter case do not matter.
        """
        shape = split_location(self.template)
        given = split_location(url)
        if shape.host.lower() != given.host.lower() or shape.absolute != given.absolute:
            return None
        if len(shape.segments) != len(given.segments):
            return None
        captured: dict[str, str] = {}
        for pattern_segment, segment in zip(shape.segments, given.segments, strict=True):
            match = _segment_pattern(pattern_segment).fullmatch(segment)
            if match is None:
                return None
            for key, value in match.groupdict().items():
                if captured.setdefault(key, value).lower() != value.lower():
                    return None
        scope, repository = captured.get("scope"), captured.get("name")
        if scope is None or repository is None:
            return None
        return scope, repository

    def identity_for(self, url: str) -> tuple[PackageId, str] | None:
        """The identity `url` names, and the repository name behind it."""
        matched = self.match(url)
        if matched is None:
            return None
        scope, repository = matched
        name = package_name_for_repository(repository)
        if name is None or not is_valid_scope(scope):
            return None
        return PackageId(scope, name), repository


@dataclass(frozen=True, slots=True)
class Repository:
    """One repository: the URL clients know it by, and the URL spm-proxy fetches from."""

    public: str
    fetch: str

    @property
    def mirrored(self) -> bool:
        """Whether the fetch location is another repository URL than the public one."""
        return canonical_location(self.fetch) != canonical_location(self.public)


@dataclass(frozen=True, slots=True)
class Templates:
    """The public URL template and the one spm-proxy fetches from (the same without a mirror)."""

    public: RepositoryTemplate
    fetch: RepositoryTemplate

    @classmethod
    def of(cls, public: str, fetch: str | None = None) -> Templates:
        return cls(RepositoryTemplate(public), RepositoryTemplate(fetch or public))

    def render(self, scope: str, repository: str) -> Repository:
        return Repository(
            self.public.render(scope, repository), self.fetch.render(scope, repository)
        )

    def match(self, url: str) -> tuple[str, str] | None:
        """`(scope, repository)` of a public or mirror URL, public first."""
        return self.public.match(url) or self.fetch.match(url)

    def identity_for(self, url: str) -> tuple[PackageId, str] | None:
        return self.public.identity_for(url) or self.fetch.identity_for(url)

    def locate(self, url: str, fetch: str | None = None) -> Repository:
        """The repository whose public URL is `url`: fetched from `fetch` when given, else
        from the mirror when `url` has the public template's shape, else from `url` itself."""
        if fetch is not None:
            return Repository(url, fetch)
        matched = self.public.match(url)
        if matched is None or self.fetch == self.public:
            return Repository(url, url)
        return Repository(url, self.fetch.render(*matched))
