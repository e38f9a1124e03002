"""A repository whose releases trip shallow fetches, for proving archives never change."""

from __future__ import annotations

from pathlib import Path

from tests.support.git_repos import GitRepo

T0 = 1_700_000_000
MANIFEST = "// swift-tools-version:5.8\nimport PackageDescription\n"
MANIFEST_59 = "// swift-tools-version:5.9\nimport PackageDescription\n"
VERSIONS = ("1.0.0", "1.1.0", "1.2.0-beta.1", "1.2.0")


def publish_release_history(git_root: Path) -> GitRepo:
    """Releases with what trips shallow fetches: a file reverted to content only
    older history holds, files removed and restored, annotated, `v`-prefixed and
    pre-release tags, links, executables, version-specific manifests."""
    repo = GitRepo.init(git_root / "mona" / "LinkedList")
    repo.write("Package.swift", MANIFEST)
    repo.write("Sources/LinkedList/Node.swift", "struct Node { let v = 1 }\n")
    repo.write("Sources/LinkedList/Shared.swift", "let shared = 1\n")
    repo.write("scripts/build.sh", "#!/bin/sh\necho 1\n", executable=True)
    repo.symlink("Docs", "Sources")
    repo.commit("1.0.0", when=T0)
    repo.tag("1.0.0", annotated=True)
    for index in range(1, 6):  # history between releases that nothing needs
        repo.write("Sources/LinkedList/Noise.swift", f"let noise = {index}\n" * 200)
        repo.commit(f"noise {index}", when=T0 + index * 60)
    repo.write("Sources/LinkedList/Node.swift", "struct Node { let v = 2 }\n")
    repo.remove("Sources/LinkedList/Shared.swift")
    repo.write("Package@swift-5.9.swift", MANIFEST_59)
    repo.commit("1.1.0", when=T0 + 3600)
    repo.tag("v1.1.0")
    # Back to 1.0.0's Node.swift and Shared.swift: blobs only 1.0.0 has.
    repo.write("Sources/LinkedList/Node.swift", "struct Node { let v = 1 }\n")
    repo.write("Sources/LinkedList/Shared.swift", "let shared = 1\n")
    repo.commit("1.2.0-beta.1", when=T0 + 7200)
    repo.tag("1.2.0-beta.1", annotated=True, when=T0 + 7300)
    repo.write("scripts/build.sh", "#!/bin/sh\necho 2\n", executable=True)
    repo.commit("1.2.0", when=T0 + 10800)
    repo.tag("1.2.0")
    return repo


def tag_later_release(repo: GitRepo) -> None:
    repo.write("Sources/LinkedList/Node.swift", "struct Node { let v = 3 }\n")
    repo.commit("2.0.0", when=T0 + 86400)
    repo.tag("v2.0.0", annotated=True)
