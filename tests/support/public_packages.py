"""Swift packages whose manifests name each other by public git URLs.

`mona.LinkedList` depends on `mona.Node` as `.package(url: "<public>/mona/Node.git")`,
the way real packages name their dependencies on github.com; the repositories
themselves live on a mirror, under `github/` in the git server's root.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.git_repos import GitRepo
from tests.support.swift_packages import linked_list_source, publish_node

LINKED_LIST_MANIFEST = """\
// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "LinkedList",
    products: [.library(name: "LinkedList", targets: ["LinkedList"])],
    dependencies: [.package(url: "{node}", from: "1.0.0")],
    targets: [
        .target(name: "LinkedList", dependencies: [.product(name: "Node", package: "Node")]),
    ]
)
"""


def publish_mirrored_graph(mirror_root: Path, public_base: str) -> None:
    """`mona.Node` 1.0.0 and `mona.LinkedList` 1.0.0 and 1.1.0 under `mirror_root`,
    LinkedList naming Node at `public_base/mona/Node.git`."""
    publish_node(mirror_root)
    repo = GitRepo.init(mirror_root / "mona" / "LinkedList")
    manifest = LINKED_LIST_MANIFEST.replace("{node}", f"{public_base}/mona/Node.git")
    repo.write("Package.swift", manifest)
    repo.write("Sources/LinkedList/LinkedList.swift", linked_list_source("1.0.0"))
    repo.commit("LinkedList 1.0.0", when=1_700_000_100)
    repo.tag("1.0.0")
    repo.write("Sources/LinkedList/LinkedList.swift", linked_list_source("1.1.0"))
    repo.commit("LinkedList 1.1.0", when=1_700_000_200)
    repo.tag("v1.1.0", annotated=True, when=1_700_000_300)


def write_identity_consumer(path: Path) -> Path:
    """An executable depending on `mona.LinkedList` and `mona.Node` by registry identity."""
    (path / "Sources" / "App").mkdir(parents=True)
    (path / "Package.swift").write_text(
        "// swift-tools-version:5.9\n"
        "import PackageDescription\n\n"
        "let package = Package(\n"
        '    name: "App",\n'
        "    dependencies: [\n"
        '        .package(id: "mona.LinkedList", from: "1.0.0"),\n'
        '        .package(id: "mona.Node", from: "1.0.0"),\n'
        "    ],\n"
        "    targets: [\n"
        '        .executableTarget(name: "App", dependencies: [\n'
        '            .product(name: "LinkedList", package: "mona.LinkedList"),\n'
        '            .product(name: "Node", package: "mona.Node"),\n'
        "        ]),\n"
        "    ]\n"
        ")\n"
    )
    (path / "Sources" / "App" / "main.swift").write_text(
        "import LinkedList\nimport Node\n\nprint(linkedListDescription())\n"
    )
    return path
