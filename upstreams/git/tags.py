"""Which git tags are releases, read from an ls-remote ref advertisement."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from upstreams.model import Version

_TAG_PREFIX = b"refs/tags/"
_PEELED_SUFFIX = b"^{}"
# An object name as a remote advertises it: hex SHA-1 or SHA-256 (gitformat-pack(5)).
_OBJECT_NAME = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ReleaseTag:
    name: str
    # What the ref points at: a commit, or an annotated tag object.
    sha: str


def _preference(name: str) -> tuple[int, str]:
    # A bare `1.2.3` beats `v1.2.3`/`V1.2.3`; the name breaks the remaining tie
    # so the choice never depends on advertisement order.
    return (0 if name[:1].isdigit() else 1, name)


def release_tags(refs: Mapping[bytes, bytes | None]) -> dict[Version, ReleaseTag]:
    """Tags naming a SemVer version (optional `v`/`V` prefix), one per version."""
    chosen: dict[Version, ReleaseTag] = {}
    for ref, sha in refs.items():
        if sha is None or not ref.startswith(_TAG_PREFIX) or ref.endswith(_PEELED_SUFFIX):
            continue
        try:
            name = ref[len(_TAG_PREFIX) :].decode("utf-8")
        except UnicodeDecodeError:
            continue
        version = Version.from_tag(name)
        if version is None or not _OBJECT_NAME.fullmatch(sha):
            continue
        current = chosen.get(version)
        if current is None or _preference(name) < _preference(current.name):
            chosen[version] = ReleaseTag(name, sha.decode("ascii"))
    return chosen
