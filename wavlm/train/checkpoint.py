"""Atomic training checkpoints.

In an exp dir:
  checkpoint_<updates>.pt   full training state (model, optimizer, scaler, data position): resume reads these;
                            the last K are kept
  checkpoint_last.pt        the newest of them (a hard link)
  nbest/checkpoint_<u>.pt   the model state (what the task stores, no optimizer) of the N best validations
  checkpoint_best.pt        the best validated model (a hard link into nbest/): what recipes use by default
  checkpoint_avg.pt         the element-wise mean of the nbest/ models (ESPnet's N-best averaging), when N > 1
"""
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


def _link(src: Path, dest: Path, state: dict[str, Any] | None = None) -> None:
    """Atomically make `dest` the same file as `src` (a hard link; a copy across file systems)."""
    if dest.exists() and os.path.samefile(src, dest):  # already (rename onto the same file would leave tmp)
        return
    tmp = dest.parent / f".{dest.name}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # a hard link costs no space
    except OSError:
        atomic_save(state if state is not None else load(src), tmp)
    os.replace(tmp, dest)


def save(state: dict[str, Any], exp_dir: str | os.PathLike, updates: int, keep_last: int) -> Path:
    """Write `checkpoint_<updates>.pt`, point `checkpoint_last.pt` at it, drop older numbered ones."""
    exp_dir = Path(exp_dir)
    path = exp_dir / f"checkpoint_{updates}.pt"
    atomic_save(state, path)
    _link(path, exp_dir / "checkpoint_last.pt", state)
    if keep_last > 0:
        for old in numbered(exp_dir)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def numbered(exp_dir: str | os.PathLike) -> list[Path]:
    """Numbered checkpoints, oldest first."""
    found = []
    for p in Path(exp_dir).glob("checkpoint_*.pt"):  # not nbest/: those hold no training state
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


# ---- the N best validated models ------------------------------------------------------------------------


def nbest_path(exp_dir: str | os.PathLike, updates: int) -> Path:
    return Path(exp_dir) / "nbest" / f"checkpoint_{updates}.pt"


def save_nbest(model_state: dict[str, Any], exp_dir: str | os.PathLike, updates: int) -> Path:
    path = nbest_path(exp_dir, updates)
    atomic_save(model_state, path)
    return path


def publish_best(exp_dir: str | os.PathLike, best: list[dict[str, Any]], average: bool) -> None:
    """Point checkpoint_best.pt at the best entry of `best` (sorted, best first: {"updates", "value"}) and,
    with `average`, write checkpoint_avg.pt, the mean of all entries' models."""
    exp_dir = Path(exp_dir)
    paths = [nbest_path(exp_dir, e["updates"]) for e in best]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        log.warning("cannot publish the best checkpoints: %s missing", ", ".join(missing))
        return
    _link(paths[0], exp_dir / "checkpoint_best.pt")
    if average:
        avg = average_states([load(p) for p in paths])
        avg["averaged"] = {"updates": [e["updates"] for e in best], "values": [e["value"] for e in best]}
        atomic_save(avg, exp_dir / "checkpoint_avg.pt")


def prune_nbest(exp_dir: str | os.PathLike, best: list[dict[str, Any]]) -> None:
    """Remove nbest/ models that are no longer among `best`."""
    keep = {nbest_path(exp_dir, e["updates"]) for e in best}
    for p in (Path(exp_dir) / "nbest").glob("checkpoint_*.pt"):
        if p not in keep:
            p.unlink(missing_ok=True)


def average_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise mean of the floating-point tensors of `states` (nested dicts of the same layout); every
    other value (integer tensors such as BatchNorm's num_batches_tracked, the units, the config) is taken from
    the first state, which should be the best one. (A dozen lines: no kept library averages nested dicts.)"""
    first = states[0]
    out: dict[str, Any] = {}
    for k, v in first.items():
        if isinstance(v, dict):
            out[k] = average_states([s[k] for s in states])
        elif isinstance(v, torch.Tensor) and v.is_floating_point():
            acc = torch.zeros_like(v, dtype=torch.float64)
            for s in states:
                if not isinstance(s.get(k), torch.Tensor) or s[k].shape != v.shape:
                    raise ValueError(f"cannot average: {k!r} differs in shape or kind between checkpoints")
                acc += s[k].double()
            out[k] = (acc / len(states)).to(v.dtype)
        else:
            out[k] = v
    return out
