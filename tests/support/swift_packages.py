"""Small Swift packages published as git repositories for the end-to-end tests.

`mona.Node` ships a `Package@swift-5.9.swift` that defines a compilation flag,
so the built program shows which manifest the client picked. `mona.LinkedList`
depends on `mona.Node` through the registry and is tagged `1.0.0` and `v1.1.0`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.git_repos import GitRepo

NODE_MANIFEST = """\
// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "Node",
    products: [.library(name: "Node", targets: ["Node"])],
    targets: [.target(name: "Node")]
)
"""

NODE_MANIFEST_5_9 = """\
// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Node",
    products: [.library(name: "Node", targets: ["Node"])],
    targets: [.target(name: "Node", swiftSettings: [.define("NODE_MANIFEST_5_9")])]
)
"""

NODE_SOURCE = """\
public func nodeGreeting() -> String {
#if NODE_MANIFEST_5_9
    return "node 1.0.0 built from Package@swift-5.9.swift"
#else
    return "node 1.0.0 built from Package.swift"
#endif
}
"""

LINKED_LIST_MANIFEST = """\
// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "LinkedList",
    products: [.library(name: "LinkedList", targets: ["LinkedList"])],
    dependencies: [.package(id: "mona.Node", from: "1.0.0")],
    targets: [
        .target(name: "LinkedList", dependencies: [.product(name: "Node", package: "mona.Node")]),
    ]
)
"""


def linked_list_source(version: str) -> str:
    return (
        "import Node\n\n"
        "public func linkedListDescription() -> String {\n"
        f'    "linked-list {version} with " + nodeGreeting()\n'
        "}\n"
    )


def publish_node(root: Path) -> GitRepo:
    repo = GitRepo.init(root / "mona" / "Node")
    repo.write("Package.swift", NODE_MANIFEST)
    repo.write("Package@swift-5.9.swift", NODE_MANIFEST_5_9)
    repo.write("Sources/Node/Node.swift", NODE_SOURCE)
    repo.commit("Node 1.0.0", when=1_700_000_000)
    repo.tag("1.0.0")
    return repo


def publish_linked_list(root: Path) -> GitRepo:
    repo = GitRepo.init(root / "mona" / "LinkedList")
    repo.write("Package.swift", LINKED_LIST_MANIFEST)
    repo.write("Sources/LinkedList/LinkedList.swift", linked_list_source("1.0.0"))
    repo.commit("LinkedList 1.0.0", when=1_700_000_100)
    repo.tag("1.0.0")
    repo.write("Sources/LinkedList/LinkedList.swift", linked_list_source("1.1.0"))
    repo.commit("LinkedList 1.1.0", when=1_700_000_200)
    repo.tag("v1.1.0", annotated=True, when=1_700_000_300)
    return repo


GREETER_MANIFEST = """\
// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "Greeter",
    products: [.library(name: "Greeter", targets: ["Greeter"])],
    targets: [.target(name: "Greeter")]
)
"""


def publish_greeter(root: Path) -> GitRepo:
    """`acme.Greeter` 2.0.0: a package with no dependencies, in another scope."""
    repo = GitRepo.init(root / "acme" / "Greeter")
    repo.write("Package.swift", GREETER_MANIFEST)
    repo.write(
        "Sources/Greeter/Greeter.swift",
        'public func greeting() -> String {\n    "greeter 2.0.0"\n}\n',
    )
    repo.commit("Greeter 2.0.0", when=1_700_000_400)
    repo.tag("2.0.0")
    return repo


def write_consumer(
    path: Path,
    dependency: str,
    product_package: str,
    *,
    extra: tuple[str, str, str] | None = None,
) -> Path:
    """An executable package whose main prints what its dependencies return.

    `extra` adds one more dependency as (dependency clause, product, package).
    """
    dependencies = [dependency]
    products = [f'.product(name: "LinkedList", package: "{product_package}")']
    imports = ["import LinkedList"]
    output = "linkedListDescription()"
    if extra is not None:
        clause, product, package = extra
        dependencies.append(clause)
        products.append(f'.product(name: "{product}", package: "{package}")')
        imports.append(f"import {product}")
        output += ' + " and " + greeting()'
    (path / "Sources" / "App").mkdir(parents=True)
    (path / "Package.swift").write_text(
        "// swift-tools-version:5.9\n"
        "import PackageDescription\n\n"
        "let package = Package(\n"
        '    name: "App",\n'
        f"    dependencies: [{', '.join(dependencies)}],\n"
        "    targets: [\n"
        '        .executableTarget(name: "App", dependencies: [\n'
        f"            {', '.join(products)},\n"
        "        ]),\n"
        "    ]\n"
        ")\n"
    )
    (path / "Sources" / "App" / "main.swift").write_text(
        "\n".join(imports) + f"\n\nprint({output})\n"
    )
    return path


def configure_registry(package: Path, registry_url: str) -> None:
    """Project-level registries.json, as `swift package-registry set` writes it."""
    config = package / ".swiftpm" / "configuration"
    config.mkdir(parents=True, exist_ok=True)
    (config / "registries.json").write_text(
        json.dumps(
            {
                "authentication": {},
                "registries": {"[default]": {"supportsAvailability": False, "url": registry_url}},
                "version": 1,
            },
            indent=2,
        )
    )
