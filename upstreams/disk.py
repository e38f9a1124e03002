"""How much room rebuildable local state takes. Pure stdlib, blocking.

The git upstream measures its mirrors with it (`LocalCache.usage`), and the
proxy measures its whole data directory for `gc`; both run it in a thread.
"""

from __future__ import annotations

from pathlib import Path


def tree_size(path: Path) -> int:
    """Bytes of the regular files below `path`; 0 when it does not exist.

    A file that vanishes or cannot be read during the walk is skipped: the
    total is an estimate for a size limit, and another process may be
    trimming the same tree.
    """
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:
            continue
    return total
