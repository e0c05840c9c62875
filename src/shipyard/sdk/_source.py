"""Find where a run's code came from: the entry point and its git commit, without git."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from shipyard.tracking.models import RunSource


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = candidate.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def _head_commit(git_dir: Path) -> str | None:
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.split(":", 1)[1].strip()
        loose = git_dir / ref
        if loose.is_file():
            return loose.read_text().strip() or None
        common = git_dir / "commondir"
        base = (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir
        for candidate in (base / ref, base / "packed-refs", git_dir / "packed-refs"):
            if candidate.name == "packed-refs" and candidate.is_file():
                for line in candidate.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0]
            elif candidate.is_file():
                return candidate.read_text().strip() or None
    except OSError:
        return None
    return None


@cache
def detect_source() -> RunSource:
    """The script that started this process and the git commit it was checked out at."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    entry = Path(argv0).name if argv0 else "<interactive>"
    start = Path(argv0).resolve().parent if argv0 and Path(argv0).exists() else Path.cwd()
    git_dir = _git_dir(start)
    commit = _head_commit(git_dir) if git_dir else None
    return RunSource(git_commit=commit[:64] if commit else None, entry_point=entry[:1024])
