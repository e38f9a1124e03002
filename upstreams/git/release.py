"""One release built from a mirror: its manifests, its metadata and its canonical archive.

A job of the build processes (`builds`): it takes and returns plain values,
and leaves the archive in a scratch file for the caller to store.
Blocking: call through `BuildPool.run`, or from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from upstreams.errors import InvalidRelease
from upstreams.git import mirror
from upstreams.git.archive import build_threads, find_manifests, write_archive
from upstreams.git.tags import ReleaseTag
from upstreams.git.tree import TreeFiles, collect_files
from upstreams.model import MANIFEST_NAME, Manifest, PackageId, utc_timestamp


@dataclass(frozen=True, slots=True)
class Source:
    """Where a release comes from, as errors and metadata name it (no credentials)."""

    upstream: str
    where: str
    repository_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Built:
    manifests: tuple[Manifest, ...]
    metadata: dict[str, Any]
    commit: str


def build(path: Path, source: Source, package: PackageId, tag: ReleaseTag, archive: Path) -> Built:
    """Build `tag` of the mirror at `path` into `archive`; the mirror holds its objects."""
    upstream, where = source.upstream, source.where
    log = structlog.get_logger().bind(upstream=upstream, package=str(package), tag=tag.name)
    with mirror.reading(upstream, where), mirror.MirrorRepo(str(path)) as repo:
        commit, annotated = mirror.peel(repo, tag.sha, upstream, where)
        files = collect_files(repo, commit.tree)
        if MANIFEST_NAME not in files.files:
            raise InvalidRelease(
                upstream,
                f"{upstream}: tag {tag.name} of {where} has no {MANIFEST_NAME} at its root",
                where,
            )
        _check_names(files, upstream, tag.name, where)
        manifests = find_manifests(repo, files)
        archive.parent.mkdir(parents=True, exist_ok=True)
        entries = write_archive(
            lambda: mirror.MirrorRepo(str(path)),
            files,
            package.key,
            int(commit.commit_time),
            archive,
            threads=build_threads(),
        )
    sha = commit.id.decode("ascii")
    source_control: dict[str, Any] = {"tag": tag.name, "commit": sha}
    if files.submodules:
        source_control["submodules"] = sorted(files.submodules)
    published = annotated.tag_time if annotated is not None else commit.commit_time
    metadata: dict[str, Any] = {
        "repositoryURLs": list(source.repository_urls),
        "originalPublicationTime": utc_timestamp(published),
        "sourceControl": source_control,
    }
    log.info("release_archived", commit=sha, entries=entries)
    return Built(manifests, metadata, sha)


def _check_names(files: TreeFiles, upstream: str, tag: str, where: str) -> None:
    """Zip entry names are UTF-8 (APPNOTE 4.4.4, bit 11); git's are any bytes."""
    for path in files.files:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InvalidRelease(
                upstream,
                f"{upstream}: tag {tag} of {where} holds a file name that is not UTF-8 "
                f"({shown}), which no source archive can carry",
                where,
            ) from None
