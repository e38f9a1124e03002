"""The files of a tagged tree as an archive sees them.

Symbolic links are resolved inside the package (zip consumers, and SwiftPM on
some platforms, do not restore links), links that leave the package or lead
nowhere are dropped, and submodules are reported because their content is not
in this repository. Blocking: call from a worker thread.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

import structlog
from dulwich.objects import Blob, Tree
from dulwich.repo import Repo

GITLINK_MODE = 0o160000
# Links followed to resolve one path, and directory links nested inside one
# another: enough for real packages, small enough to stop cycles quickly.
MAX_LINK_HOPS = 16
MAX_DIRECTORY_LINK_DEPTH = 8


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    blob: bytes
    executable: bool


@dataclass(slots=True)
class TreeFiles:
    files: dict[str, FileEntry] = field(default_factory=dict)
    submodules: list[str] = field(default_factory=list)
    dropped_links: list[str] = field(default_factory=list)


class _Tree:
    """Every path of a tree (directories included), indexed without loading blobs."""

    def __init__(self, repo: Repo, root: bytes) -> None:
        self.repo = repo
        self.entries: dict[str, tuple[int, bytes]] = {"": (stat.S_IFDIR, root)}
        self.children: dict[str, list[str]] = {}
        self._index("", root)

    def _index(self, prefix: str, tree_id: bytes) -> None:
        tree = self.repo[tree_id]
        assert isinstance(tree, Tree)
        names: list[str] = []
        for item in tree.iteritems():
            name = item.path.decode("utf-8", "surrogateescape")
            path = f"{prefix}/{name}" if prefix else name
            names.append(path)
            self.entries[path] = (item.mode, item.sha)
            if stat.S_ISDIR(item.mode):
                self._index(path, item.sha)
        self.children[prefix] = names

    def link_target(self, sha: bytes) -> str:
        blob = self.repo[sha]
        assert isinstance(blob, Blob)
        return blob.as_raw_string().decode("utf-8", "surrogateescape")

    def resolve(self, path: str) -> str | None:
        """The real path (no links in it) `path` leads to, or None if it leaves or dangles."""
        resolved: list[str] = []
        pending = path.split("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    return None
                resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            entry = self.entries.get(candidate)
            if entry is None:
                return None
            mode, sha = entry
            if stat.S_ISLNK(mode):
                hops += 1
                target = self.link_target(sha)
                if hops > MAX_LINK_HOPS or target.startswith("/"):
                    return None
                pending = target.split("/") + pending
                continue
            if not stat.S_ISDIR(mode) and pending and any(p not in ("", ".") for p in pending):
                # A file used as a directory.
                return None
            resolved.append(part)
        return "/".join(resolved)


def collect_files(repo: Repo, tree_id: bytes) -> TreeFiles:
    tree = _Tree(repo, tree_id)
    result = TreeFiles()
    log = structlog.get_logger()

    def add_directory(real_dir: str, shown_dir: str, depth: int) -> None:
        for real in tree.children.get(real_dir, []):
            shown = shown_dir + real[len(real_dir) :] if real_dir else _join(shown_dir, real)
            add(real, shown, depth)

    def add(real: str, shown: str, depth: int) -> None:
        mode, sha = tree.entries[real]
        if mode == GITLINK_MODE:
            if shown not in result.submodules:
                result.submodules.append(shown)
                log.warning("submodule_skipped", path=shown, commit=sha.decode("ascii"))
            return
        if stat.S_ISDIR(mode):
            add_directory(real, shown, depth)
            return
        if not stat.S_ISLNK(mode):
            result.files[shown] = FileEntry(shown, sha, bool(mode & 0o111))
            return
        target_text = tree.link_target(sha)
        parent = real.rpartition("/")[0]
        target = tree.resolve(_join(parent, target_text))
        reason = None
        if target is None:
            reason = "outside the package or dangling"
        elif target == "" or real.startswith(target + "/") or real == target:
            reason = "cycle"
        elif depth >= MAX_DIRECTORY_LINK_DEPTH:
            reason = "too deeply nested"
        if reason is not None or target is None:
            result.dropped_links.append(shown)
            log.warning("symlink_dropped", path=shown, target=target_text, reason=reason)
            return
        target_mode, target_sha = tree.entries[target]
        if stat.S_ISDIR(target_mode):
            add_directory(target, shown, depth + 1)
        elif target_mode == GITLINK_MODE:
            add(target, shown, depth)
        else:
            result.files[shown] = FileEntry(shown, target_sha, bool(target_mode & 0o111))

    add_directory("", "", 0)
    return result


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name
