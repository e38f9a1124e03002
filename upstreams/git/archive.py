"""Canonical source archives: the same tree always gives the same bytes.

Every independent spm-proxy must produce identical archives for a tag so that
checksums agree, so nothing here depends on the clock, the machine, the order
git stores entries in, or what was fetched before. Blocking: call from a
worker thread.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

from dulwich.objects import Blob
from dulwich.repo import Repo

from upstreams.git.tree import TreeFiles
from upstreams.model import Manifest, is_manifest_filename, parse_tools_version

# Fixed so that the bytes do not depend on zlib's default.
COMPRESS_LEVEL = 6
# What zip's DOS timestamps can express.
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)
_ZIP_END = datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC)
_UNIX = 3
_REGULAR_FILE = 0o100000


def zip_timestamp(epoch_seconds: int) -> tuple[int, int, int, int, int, int]:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    moment = min(max(moment, _ZIP_EPOCH), _ZIP_END)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _blob_data(repo: Repo, sha: bytes) -> bytes:
    blob = repo[sha]
    assert isinstance(blob, Blob)
    return blob.as_raw_string()


def find_manifests(repo: Repo, files: TreeFiles) -> tuple[Manifest, ...]:
    """Root-level manifests, byte for byte as the archive will contain them."""
    manifests = []
    for path in sorted(files.files):
        if "/" in path or not is_manifest_filename(path):
            continue
        content = _blob_data(repo, files.files[path].blob)
        manifests.append(Manifest(path, content, parse_tools_version(content)))
    return tuple(manifests)


def write_archive(
    repo: Repo, files: TreeFiles, top_directory: str, epoch_seconds: int, destination: Path
) -> int:
    """Write `files` under `top_directory/` to `destination`; returns the entry count."""
    date_time = zip_timestamp(epoch_seconds)
    # One blob in memory at a time: archives can be large.
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Code point order is UTF-8 byte order: independent of locale.
        for path in sorted(files.files):
            entry = files.files[path]
            info = zipfile.ZipInfo(f"{top_directory}/{path}", date_time=date_time)
            info.create_system = _UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if entry.executable else 0o644
            info.external_attr = (_REGULAR_FILE | mode) << 16
            archive.writestr(info, _blob_data(repo, entry.blob), compresslevel=COMPRESS_LEVEL)
    return len(files.files)
