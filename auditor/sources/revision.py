"""The revision of an input: the git commit checked out where a manifest path lives.

Read from ``.git`` (HEAD, loose refs, packed-refs; linked work trees and submodules through their
``gitdir:`` file) without running git, so a source records it cheaply and deterministically. It names
the commit only: uncommitted or untracked changes are not reflected, and the evidence sha256 remains
the revision of what was actually read.
"""

from __future__ import annotations

import re
from pathlib import Path

_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def git_commit(target: str) -> str | None:
    """The commit HEAD resolves to in the work tree holding ``target``, or None (stdin, no repository)."""
    if target == "-" or target.startswith("/dev/"):
        return None
    try:
        start = Path(target).resolve()
        if not start.exists():
            return None
        folder = start if start.is_dir() else start.parent
        for candidate in (folder, *folder.parents):
            dot_git = candidate / ".git"
            if dot_git.is_dir():
                return _resolve_head(dot_git)
            if dot_git.is_file():
                text = dot_git.read_text("utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                return _resolve_head((candidate / text.removeprefix("gitdir:").strip()).resolve())
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _resolve_head(git_dir: Path) -> str | None:
    head = (git_dir / "HEAD").read_text("utf-8").strip()
    common = git_dir
    if (git_dir / "commondir").is_file():  # a linked work tree keeps its branches in the main repository
        common = (git_dir / (git_dir / "commondir").read_text("utf-8").strip()).resolve()
    if not head.startswith("ref:"):
        return head if _OBJECT_ID.fullmatch(head) else None  # detached HEAD
    ref = head.removeprefix("ref:").strip()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text("utf-8").strip()
            return value if _OBJECT_ID.fullmatch(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text("utf-8").splitlines():
            object_id, _, name = line.partition(" ")
            if name.strip() == ref and _OBJECT_ID.fullmatch(object_id):
                return object_id
    return None  # a branch with no commit yet
