"""One bare mirror per repository, holding only what its release tags need.

A release needs its tagged tree, never the history behind it, so every fetch
is shallow: depth 1 (git's `deepen 1`, gitprotocol-pack(5)) of exactly the
object the tag names. The first one brings the tagged commit and its whole
tree; later ones offer the tags already present as haves, so the server
sends only the objects their trees lack, and the `shallow` lines tell it
that the history behind those haves is absent here (gitprotocol-pack(5),
"Shallow"). Mirrors made with full history by earlier versions keep
working: their tags build as before, and later fetches into them are shallow.

Blocking: call from a worker thread. `update` holds the mirror's lock
(`locking`) from before the mirror is created to after its ref is written,
so processes sharing the data directory never write one mirror at once, and
it first clears whatever a killed writer left there (`leftovers.recover`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import structlog
from dulwich.client import GitClient
from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    GitProtocolError,
    ObjectFormatException,
)
from dulwich.object_store import ObjectStoreGraphWalker
from dulwich.objects import Commit, ObjectID, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from upstreams.errors import InvalidRelease, RemoteFailed
from upstreams.git import leftovers, packs
from upstreams.git.locking import mirror_lock
from upstreams.git.tags import ReleaseTag
from upstreams.git.transport import TransportOptions, remote, translate
from upstreams.locations import canonical_location, redact
from upstreams.model import Version

_TAGS = Ref(b"refs/tags")


class Haves(ObjectStoreGraphWalker):
    """What a mirror offers in negotiation: present tag commits, in a given order.

    dulwich's own walker starts from `refs/heads` (a mirror has none) and walks
    parents, which a shallow mirror does not have: it would stop at the first
    missing one. The tags alone say enough: the server knows their history,
    and the `shallow` lines say where ours ends.
    """

    def __init__(self, commits: list[ObjectID], shallow: set[ObjectID]) -> None:
        super().__init__(commits, lambda sha: [], shallow=shallow)
        self._pending = list(dict.fromkeys(commits))

    def next(self) -> ObjectID | None:
        return self._pending.pop(0) if self._pending else None

    __next__ = next

    def ack(self, sha: ObjectID) -> None:
        # Nothing to prune: no history is offered behind a have.
        return None


class MirrorRepo(Repo):
    """A bare mirror that offers its tags as haves, nearest to `wanted` first.

    Stateless negotiation (smart HTTP) sends a bounded number of haves, so the
    most useful ones go first: the releases closest to the one being fetched
    share the most files with it.
    """

    wanted: Version | None = None
    # False for a server that cannot fetch shallowly: it would take our haves
    # for their whole history, which a shallow mirror lacks.
    negotiate: bool = True

    def get_graph_walker(self, heads: list[ObjectID] | None = None) -> Haves:
        if not self.negotiate:
            return Haves([], set())
        if heads is None:
            heads = self.tag_commits(self.wanted)
        return Haves(heads, self.get_shallow())

    def tag_commits(self, wanted: Version | None = None) -> list[ObjectID]:
        """Commits of the release tags present here, nearest version to `wanted` first."""
        found: list[tuple[tuple[int, int, int, bool, str], ObjectID]] = []
        for name in self.refs.as_dict(_TAGS):
            try:
                peeled = self.get_peeled(Ref(_TAGS + b"/" + name))
            except KeyError:
                continue
            if peeled not in self.object_store or not isinstance(self[peeled], Commit):
                continue
            version = Version.from_tag(name.decode("utf-8", "replace"))
            found.append((_distance(version, wanted), peeled))
        return [sha for _, sha in sorted(found)]


def _distance(version: Version | None, wanted: Version | None) -> tuple[int, int, int, bool, str]:
    if version is None or wanted is None:
        return (1 << 30, 0, 0, False, str(version))
    return (
        abs(version.major - wanted.major),
        abs(version.minor - wanted.minor),
        abs(version.patch - wanted.patch),
        version > wanted,
        str(version),
    )


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


def _recover(path: Path, log: structlog.typing.FilteringBoundLogger) -> None:
    """Clear what a killed writer left; call holding the mirror's lock."""
    recovered = leftovers.recover(path)
    if recovered.removed_mirror:
        log.warning("mirror_rebuilt", mirror=path.name)
    for lock in recovered.locks:
        log.warning("stale_lock_cleared", mirror=path.name, lock=lock)
    if recovered.freed and not recovered.removed_mirror:
        log.info("leftovers_removed", mirror=path.name, size=recovered.freed)


def update(
    path: Path,
    url: str,
    tag: ReleaseTag,
    *,
    upstream: str,
    options: TransportOptions,
    version: Version | None = None,
) -> bool:
    """Make the object `tag` points at (as advertised now) present in the mirror.

    Returns whether anything was downloaded. The tag is stored under
    `refs/tags/` so later fetches of other tags negotiate with it as a have.
    """
    log = structlog.get_logger().bind(upstream=upstream, url=redact(url), tag=tag.name, sha=tag.sha)
    ref = Ref(_TAGS + b"/" + tag.name.encode("utf-8"))
    wanted = ObjectID(tag.sha.encode("ascii"))
    with mirror_lock(path):
        _recover(path, log)
        with open_mirror(path) as repo:
            if wanted in repo.object_store:
                # Objects only arrive as whole packs, and a pack that brings a
                # commit brings its tree (or the server knew we had it).
                repo.refs[ref] = wanted
                log.debug("mirror_fetch_skipped")
                return False
            repo.wanted = version
            _fetch_wanted(repo, url, wanted, upstream=upstream, options=options, log=log)
            if wanted not in repo.object_store:
                # The remote advertised this object and then did not send it: its
                # failure, not a verdict on the release, so nothing is remembered.
                raise RemoteFailed(
                    upstream, f"{upstream}: {redact(url)} did not send tag {tag.name}", redact(url)
                )
            repo.refs[ref] = wanted
            log.info("mirror_fetched", mirror=path.name, shallow=len(repo.get_shallow()))
            return True


def _fetch_wanted(
    repo: MirrorRepo,
    url: str,
    wanted: ObjectID,
    *,
    upstream: str,
    options: TransportOptions,
    log: structlog.typing.FilteringBoundLogger,
) -> None:
    def determine_wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        # Exactly the object ls-remote reported, even if the tag moved since.
        return [wanted]

    with remote(url, upstream, options) as (client, remote_path):
        try:
            _fetch(client, remote_path, repo, determine_wants, depth=1)
        except GitProtocolError as exc:
            if "shallow capability" not in str(exc):
                raise
            # A server without `shallow` (gitprotocol-capabilities(5)) sends
            # the tag with its whole history, asked with nothing in common.
            log.info("mirror_fetch_not_shallow", reason=str(exc))
            repo.negotiate = False
            _fetch(client, remote_path, repo, determine_wants)


def _fetch(
    client: GitClient,
    remote_path: str,
    repo: MirrorRepo,
    determine_wants: Callable[..., list[ObjectID]],
    depth: int | None = None,
) -> None:
    """Fetch a pack into `repo`, kept as it arrives, and record the shallow boundary
    the server sent."""
    receiver = packs.PackReceiver(repo.object_store)
    try:
        result = client.fetch_pack(
            remote_path, determine_wants, repo.get_graph_walker(), receiver.feed, depth=depth
        )
    except BaseException:
        with contextlib.suppress(Exception):
            receiver.finish()  # the fetch's failure is the one to report
        raise
    receiver.finish()
    repo.update_shallow(result.new_shallow, result.new_unshallow)


@contextmanager
def reading(upstream: str, where: str) -> Iterator[None]:
    """Objects are parsed as a release reads them (`packs` keeps packs unparsed):
    one that does not parse, or a delta that does not apply, is the remote's failure."""
    try:
        yield
    except (ObjectFormatException, ChecksumMismatch, ApplyDeltaError) as exc:
        translated = translate(exc, upstream, where)
        assert translated is not None
        raise translated from None


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
