"""`tree_size`: what gc and the git mirrors' `usage` count as occupied bytes."""

from __future__ import annotations

from pathlib import Path

from upstreams.disk import tree_size


def test_counts_regular_files_at_every_depth(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "b").write_bytes(b"y" * 32)
    (tmp_path / "empty").mkdir()
    assert tree_size(tmp_path) == 42


def test_a_missing_directory_takes_no_room(tmp_path: Path) -> None:
    assert tree_size(tmp_path / "never-created") == 0
