"""One bare mirror per repository, updated by fetching only the tags needed.

Blocking: call from a worker thread, with the repository's lock held for
`update`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from dulwich.objects import Commit, ObjectID, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from upstreams.errors import InvalidRelease, RemoteFailed
from upstreams.git.tags import ReleaseTag
from upstreams.git.transport import TransportOptions, remote
from upstreams.locations import canonical_location, redact


class MirrorRepo(Repo):
    """A bare repository that offers its tags as haves when fetching.

    dulwich's default graph walker only advertises `refs/heads`, but a mirror
    only ever holds tags, so without this every fetch would start from nothing.
    """

    def get_graph_walker(self, heads: list[ObjectID] | None = None) -> Any:
        if heads is None:
            heads = []
            for ref in self.refs.as_dict(Ref(b"refs/tags")):
                try:
                    peeled = self.get_peeled(Ref(b"refs/tags/" + ref))
                except KeyError:
                    continue
                if peeled in self.object_store and isinstance(self[peeled], Commit):
                    heads.append(peeled)
        return super().get_graph_walker(heads)


def mirror_path(root: Path, url: str) -> Path:
    """Where the mirror of `url` lives: stable across URL spellings of one repository."""
    digest = hashlib.sha256(canonical_location(url).encode("utf-8")).hexdigest()
    return root / "mirrors" / f"{digest[:32]}.git"


def open_mirror(path: Path) -> MirrorRepo:
    if (path / "objects").is_dir():
        return MirrorRepo(str(path))
    path.mkdir(parents=True, exist_ok=True)
    Repo.init_bare(str(path)).close()
    return MirrorRepo(str(path))


def update(
    path: Path, url: str, tag: ReleaseTag, *, upstream: str, options: TransportOptions
) -> bool:
    """Make the object `tag` points at (as advertised now) present in the mirror.

    Returns whether anything was downloaded. The tag is stored under
    `refs/tags/` so later fetches of other tags negotiate with it as a have.
    """
    log = structlog.get_logger().bind(upstream=upstream, url=redact(url), tag=tag.name, sha=tag.sha)
    ref = Ref(b"refs/tags/" + tag.name.encode("utf-8"))
    wanted = ObjectID(tag.sha.encode("ascii"))
    with open_mirror(path) as repo:
        if wanted in repo.object_store:
            # Objects are only ever added as complete packs, so a present tip
            # means its whole history is present too.
            repo.refs[ref] = wanted
            log.debug("mirror_fetch_skipped")
            return False

        def determine_wants(
            refs: Mapping[Ref, ObjectID], depth: int | None = None
        ) -> list[ObjectID]:
            # Exactly the object ls-remote reported, even if the tag moved since.
            return [wanted]

        with remote(url, upstream, options) as (client, remote_path):
            client.fetch(remote_path, repo, determine_wants=determine_wants)
        if wanted not in repo.object_store:
            # The remote advertised this object and then did not send it: its
            # failure, not a verdict on the release, so nothing is remembered.
            raise RemoteFailed(
                upstream, f"{upstream}: {redact(url)} did not send tag {tag.name}", redact(url)
            )
        repo.refs[ref] = wanted
        log.info("mirror_fetched", mirror=path.name)
        return True


def peel(repo: Repo, sha: str, upstream: str, where: str) -> tuple[Commit, Tag | None]:
    """The commit a tag ref points at, and the outermost annotated tag, if any."""
    obj = repo[ObjectID(sha.encode("ascii"))]
    outer = obj if isinstance(obj, Tag) else None
    for _ in range(32):
        if not isinstance(obj, Tag):
            break
        _, target = obj.object
        obj = repo[target]
    if not isinstance(obj, Commit):
        raise InvalidRelease(upstream, f"{upstream}: tag at {where} does not name a commit", where)
    return obj, outer
