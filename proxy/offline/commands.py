"""The offline subcommands of `spm-proxy`: each returns the process exit status."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from cache.errors import StorageError
from cache.format import FormatRefused
from proxy.config import Settings
from proxy.offline.bundle_format import BundleError
from proxy.offline.console import Console
from proxy.offline.export import Exporter, Selection
from proxy.offline.gc import Collector, human
from proxy.offline.import_ import Importer
from proxy.offline.selection import (
    PackageSpec,
    Pin,
    RegistryPin,
    SelectionError,
    SourceControlPin,
    parse_package_spec,
    parse_resolved,
)
from proxy.offline.verify import Verifier
from proxy.offline.warm import Outcome, Warmer, WarmResult
from proxy.wiring import Wired, data_format, data_usage, open_registry

FAILURE = 1
USAGE = 2


def _inputs(
    console: Console, resolved: Sequence[Path], packages: Sequence[str]
) -> tuple[list[Pin], list[PackageSpec]] | None:
    try:
        pins = [pin for path in resolved for pin in parse_resolved(path)]
        specs = [parse_package_spec(text) for text in packages]
    except SelectionError as exc:
        console.always(f"spm-proxy: {exc}")
        return None
    return pins, specs


async def warm(
    settings: Settings, resolved: Sequence[Path], packages: Sequence[str], jobs: int | None
) -> int:
    console = Console()
    inputs = _inputs(console, resolved, packages)
    if inputs is None:
        return USAGE
    pins, specs = inputs
    if not pins and not specs:
        console.always("spm-proxy warm: name at least one --resolved file or --package")
        return USAGE
    async with open_registry(settings) as wired:
        with console.progress("warming", total=None, unit="release") as bar:

            def done(result: WarmResult) -> None:
                bar.update(1)
                if result.outcome is Outcome.FAILED:
                    console.always(f"failed   {result.subject}: {result.reason}")
                elif result.outcome is Outcome.SKIPPED:
                    console.detail(f"skipped  {result.subject}: {result.reason}")
                else:
                    console.detail(f"{result.outcome.value:<8} {result.subject}")

            warmer = Warmer(
                wired.registry,
                jobs=jobs or settings.cache.max_concurrent_fills,
                on_done=done,
            )
            targets = await warmer.targets(pins, specs)
            bar.total = len(targets)
            bar.refresh()
            report = await warmer.warm(targets)
    console.always(report.summary())
    return 0 if report.ok else FAILURE


async def _selection(
    wired: Wired, console: Console, resolved: Sequence[Path], packages: Sequence[str]
) -> Selection | None:
    inputs = _inputs(console, resolved, packages)
    if inputs is None:
        return None
    pins, specs = inputs
    if not pins and not specs:
        return Selection(packages={}, everything=True)
    exact: set[tuple[str, str]] = set()
    for pin in pins:
        if isinstance(pin, RegistryPin):
            exact.add((pin.package.key, str(pin.version)))
        elif isinstance(pin, SourceControlPin):
            found = (await wired.registry.identifiers(pin.url)).identities
            if not found:
                console.always(f"spm-proxy: no registry identity is known for {pin.url}")
                return None
            exact.add((found[0].key, str(pin.version)))
    return Selection(
        packages={
            spec.package.key: None if spec.versions.latest_only else spec.versions for spec in specs
        },
        exact=exact,
    )


async def export(
    settings: Settings, output: Path, resolved: Sequence[Path], packages: Sequence[str]
) -> int:
    console = Console()
    async with open_registry(settings) as wired:
        selection = await _selection(wired, console, resolved, packages)
        if selection is None:
            return USAGE
        with console.progress("exporting", total=None, unit="B") as bar:
            try:
                summary = await exporter(wired).export(selection, output, progress=bar.update)
            except BundleError as exc:
                console.always(f"spm-proxy export: {exc}")
                return FAILURE
    console.always(
        f"export: {summary.releases} releases, {summary.files} files, "
        f"{human(summary.bytes)} written to {output}"
    )
    return 0


def exporter(wired: Wired) -> Exporter:
    index = wired.storage.index
    return Exporter(
        releases=index,
        lists=index,
        identifiers=index,
        ledger=wired.storage.ledger,
        blobs=wired.storage.blobs,
    )


def importer(wired: Wired) -> Importer:
    index = wired.storage.index
    return Importer(
        recorder=wired.recorder,
        blobs=wired.storage.blobs,
        ledger=wired.storage.ledger,
        releases=index,
        lists=index,
        identifiers=index,
        misses=index,
        scratch=wired.scratch,
    )


def _size_or_none(path: Path) -> int | None:
    return path.stat().st_size if path.is_file() else None


async def import_(settings: Settings, bundle: Path) -> int:
    console = Console()
    async with open_registry(settings) as wired:
        total = await asyncio.to_thread(_size_or_none, bundle)
        with console.progress("verifying", total=total, unit="B") as bar:
            try:
                summary = await importer(wired).import_bundle(bundle, progress=bar.update)
            except BundleError as exc:
                console.always(f"spm-proxy import: refused, nothing was imported: {exc}")
                return FAILURE
            except OSError as exc:
                console.always(f"spm-proxy import: cannot read {bundle}: {exc.strerror}")
                return FAILURE
            except StorageError as exc:
                console.always(f"spm-proxy import: the cache cannot be written: {exc}")
                return FAILURE
    console.always(
        f"import: {summary.releases_added} releases added, {summary.releases_present} already "
        f"present, {summary.blobs_added} blobs and {summary.ledger_entries_added} ledger "
        "entries added"
    )
    return 0


async def verify(settings: Settings, refetch: bool) -> int:
    console = Console()
    async with open_registry(settings) as wired:
        with console.progress("verifying", total=None, unit="blob") as bar:
            verifier = Verifier(
                ledger=wired.storage.ledger,
                blobs=wired.storage.blobs,
                releases=wired.storage.index,
                filler=wired.filler,
                on_checked=bar.update,
            )
            report = await verifier.verify(refetch=refetch and not settings.offline)
    for problem in report.problems:
        console.always(
            f"{problem.finding.value:<12} {problem.identity} {problem.version} "
            f"{problem.resource} sha256 {problem.checksum}: {problem.detail}"
        )
    for subject in report.refetched:
        console.always(f"refetched    {subject}")
    for failure in report.refetch_failures:
        console.always(f"not refetched {failure}")
    console.always(report.summary())
    return 0 if report.ok else FAILURE


async def gc(settings: Settings, max_size: int | None, prune: Sequence[str], dry_run: bool) -> int:
    console = Console()
    inputs = _inputs(console, (), prune)
    if inputs is None:
        return USAGE
    _, specs = inputs
    limit = max_size if max_size is not None else settings.cache.max_disk_size
    async with open_registry(settings) as wired:
        collector = Collector(
            blobs=wired.storage.blobs,
            ledger=wired.storage.ledger,
            releases=wired.storage.index,
            misses=wired.storage.index,
            caches=wired.caches,
            usage=lambda: data_usage(settings),
        )
        report = await collector.collect(limit=limit, prune=specs, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in report.evictions:
        line = f"{verb} {item.category:<16} {human(item.size):>10}  {item.what}  {item.detail}"
        # A dry run exists to show what would go: always list it.
        if dry_run:
            console.always(line)
        else:
            console.detail(line)
    console.always(report.summary())
    if not report.within_limit:
        console.always(
            "gc: still over the limit; what remains is ledgered archives and manifests, "
            "which stay unless pruned explicitly (--prune ID[@VERSIONS])"
        )
        return FAILURE
    return 0


async def migrate(settings: Settings, *, check: bool) -> int:
    """`spm-proxy migrate [--check]`: the data directory's format, and its upgrade."""
    console = Console()
    where = f"data directory {settings.server.data_dir}"
    stored = data_format(settings)
    try:
        state = await stored.state()
        if state.found is None:
            console.always(
                f"{where}: nothing stored yet; format {state.current} is recorded on first use"
            )
            return 0
        if not state.pending:
            console.always(f"{where}: format {state.found}, current; nothing to change")
            return 0
        if check:
            changes = await stored.plan()
            verb = "an upgrade would change"
        else:
            changes = await stored.upgrade()
            verb = "upgraded"
    except FormatRefused as exc:
        # Like every refusal at start-up: on stderr, exit status 2.
        print(f"spm-proxy: server.data_dir: {exc}", file=console.err)
        return USAGE
    except (StorageError, OSError) as exc:
        print(
            f"spm-proxy migrate: the upgrade failed, nothing is lost and running it again "
            f"continues it: {exc}",
            file=console.err,
        )
        return FAILURE
    console.always(f"{where}: format {state.found}; this version writes {state.current}; {verb}:")
    for change in changes:
        console.always(f"  {change.what}: {change.detail}")
    return FAILURE if check else 0
