"""Atomic training checkpoints: `checkpoint_<updates>.pt`, `checkpoint_last.pt`, keep the last K."""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^checkpoint_(\d+)\.pt$")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through a temporary file in the same directory, fsync'ed, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(state: dict[str, Any], exp_dir: str | os.PathLike, updates: int, keep_last: int) -> Path:
    """Write `checkpoint_<updates>.pt`, point `checkpoint_last.pt` at it, drop older numbered ones."""
    exp_dir = Path(exp_dir)
    path = exp_dir / f"checkpoint_{updates}.pt"
    atomic_save(state, path)
    last = exp_dir / "checkpoint_last.pt"
    tmp = exp_dir / ".checkpoint_last.pt.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)  # a hard link costs no space; fall back to a copy across file systems
    except OSError:
        atomic_save(state, tmp)
    os.replace(tmp, last)
    if keep_last > 0:
        for old in numbered(exp_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def numbered(exp_dir: str | os.PathLike) -> list[Path]:
    """Numbered checkpoints, oldest first."""
    found = []
    for p in Path(exp_dir).glob("checkpoint_*.pt"):
        m = _NUMBERED.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint (weights_only: tensors, numbers, strings, dicts and lists only)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(
            f"{path}: cannot load checkpoint ({e.__class__.__name__}: {e}); it may be truncated or corrupt. "
            "Older checkpoints in the same directory are kept: remove this one to resume from them."
        ) from e


def latest(exp_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest numbered checkpoint that loads, with its state; None when there is none."""
    for p in reversed(numbered(exp_dir)):
        try:
            return p, load(p)
        except RuntimeError as e:
            log.warning("%s; trying an older checkpoint", e)
    return None
