"""Sharded, resumable dumping in the Kaldi `$cmd JOB=1:$nj` style, shared by the feature and label dumpers.

A step that writes per-utterance outputs splits the utterance list into `nj` contiguous parts
(`split_ids`), and job K (1-based) writes `OUT/<name>.K.*` files through temporary names, then a done
marker `OUT/<name>.K.done` (JSON: nj, job, a hash of the job's ids and the step's config). A rerun skips
a job whose marker matches; a marker from a different split or config is discarded and the job redone.
The merge checks that every job is done and concatenates the per-job text files (`<name>.K.scp` ->
`<name>.scp`, ...) sorted in C locale, rejecting duplicate keys.

CLI convention (see `add_shard_args`): `--nj N --job K` runs job K only; `--nj N` without `--job` runs all
jobs in-process and merges; `--merge` only merges.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from wavlm.data.datadir import atomic_write_text, c_sorted, split_ids

logger = logging.getLogger(__name__)

INFO_NAME = "feats_info.json"  # next to a feats.scp: {"dim": D, "frame_rate": Hz, "kind": ..., ...}


class ShardError(RuntimeError):
    """A merge over incomplete or inconsistent shards."""


def add_shard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nj", type=int, default=1, help="number of parallel jobs the data is split into")
    p.add_argument("--job", type=int, default=None,
                   help="run only this job (1-based, as $cmd JOB=1:$nj sets it); without it run all, then merge")
    p.add_argument("--merge", action="store_true", help="only merge the finished jobs' outputs")


def ids_hash(ids: Sequence[str]) -> str:
    h = hashlib.sha1()
    for u in ids:
        h.update(u.encode())
        h.update(b"\n")
    return h.hexdigest()


def model_stamp(path: str | os.PathLike) -> list[int]:
    """Size and modification time of the checkpoint (files of a directory), so that a rerun with a
    retrained model at the same path is not taken for done."""
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    stats = [f.stat() for f in files if f.exists()]
    return [sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)]


class Shards:
    """The jobs of one sharded step writing `outdir/<name>.<job>.*`."""

    def __init__(self, outdir: str | os.PathLike, name: str, nj: int, config: dict | None = None):
        if nj < 1:
            raise ValueError(f"--nj must be >= 1, got {nj}")
        self.outdir = Path(outdir)
        self.name = name
        self.nj = nj
        self.config = json.loads(json.dumps(config or {}, sort_keys=True))

    def path(self, job: int, suffix: str) -> Path:
        return self.outdir / f"{self.name}.{job}.{suffix}"

    def done_path(self, job: int) -> Path:
        return self.path(job, "done")

    def marker(self, job: int, ids: Sequence[str]) -> dict:
        return {"nj": self.nj, "job": job, "num_ids": len(ids), "ids_sha1": ids_hash(ids), "config": self.config}

    def is_done(self, job: int, ids: Sequence[str]) -> bool:
        p = self.done_path(job)
        if not p.is_file():
            return False
        try:
            old = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old != self.marker(job, ids):
            logger.warning("%s is from a different split, input list or config; job %d is not done", p, job)
            return False
        return True

    def mark_done(self, job: int, ids: Sequence[str], extra: dict | None = None) -> None:
        m = self.marker(job, ids)
        atomic_write_text(self.done_path(job), json.dumps(m, sort_keys=True) + "\n")
        if extra:
            atomic_write_text(self.path(job, "json"), json.dumps(extra, sort_keys=True, indent=1) + "\n")

    def run(self, ids: Sequence[str], job: int | None, merge_only: bool,
            process: Callable[[list[str], int], dict | None], merge: Callable[[], None]) -> None:
        """Run one job, all jobs then merge, or only merge, as the shard CLI arguments ask."""
        if merge_only:
            self.check_all_done(ids)
            merge()
            return
        jobs = [job] if job is not None else list(range(1, self.nj + 1))
        for j in jobs:
            part = split_ids(list(ids), self.nj, j)
            if self.is_done(j, part):
                logger.info("job %d/%d already done (%s); skipping", j, self.nj, self.done_path(j))
                continue
            self.outdir.mkdir(parents=True, exist_ok=True)
            logger.info("job %d/%d: %d utterances -> %s", j, self.nj, len(part), self.outdir)
            extra = process(part, j)
            self.mark_done(j, part, extra)
        if job is None:
            merge()

    def check_all_done(self, ids: Sequence[str]) -> None:
        missing = [j for j in range(1, self.nj + 1) if not self.is_done(j, split_ids(list(ids), self.nj, j))]
        if missing:
            raise ShardError(
                f"{self.outdir}: jobs {missing} of {self.nj} are not done (no valid {self.name}.JOB.done); "
                "run them (with the same --nj and options) before --merge"
            )

    def merge_text(self, suffix: str, merged: str, expect: Sequence[str] | None = None) -> Path:
        """Concatenate `<name>.<job>.<suffix>` for all jobs into `outdir/merged`, sorted by key, no duplicates."""
        lines: dict[str, str] = {}
        for j in range(1, self.nj + 1):
            p = self.path(j, suffix)
            if not p.is_file():
                raise ShardError(f"{p}: missing although job {j} is marked done")
            with open(p, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    key = line.rstrip("\n").split(" ", 1)[0]  # `utt` alone: an empty hypothesis
                    if key in lines:
                        raise ShardError(f"{p}:{n}: duplicate key {key!r}")
                    lines[key] = line if line.endswith("\n") else line + "\n"
        if expect is not None and set(expect) != set(lines):
            lack = c_sorted(set(expect) - set(lines))[:3]
            extra = c_sorted(set(lines) - set(expect))[:3]
            raise ShardError(
                f"{self.outdir}: merged {merged} disagrees with the input list (missing {lack}, extra {extra})"
            )
        out = self.outdir / merged
        atomic_write_text(out, "".join(lines[k] for k in c_sorted(lines)))
        logger.info("wrote %s (%d entries)", out, len(lines))
        return out


# ---- kaldiio ark/scp written atomically -----------------------------------------------------------------


@contextmanager
def ark_scp_writer(ark: Path, scp: Path) -> Iterator[Callable[[str, np.ndarray], None]]:
    """Write `ark` + `scp` through temporary names; the scp points at the final ark path (as given)."""
    import kaldiio

    ark, scp = Path(ark), Path(scp)
    tmp_ark = ark.with_name(f".{ark.name}.tmp")
    tmp_scp = scp.with_name(f".{scp.name}.tmp")
    ok = False
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as w:
            def put(utt: str, mat: np.ndarray) -> None:
                w(utt, np.ascontiguousarray(mat, dtype=np.float32))

            yield put
        lines = []
        with open(tmp_scp, encoding="utf-8") as f:
            for line in f:
                utt, spec = line.rstrip("\n").split(" ", 1)
                _, _, offset = spec.rpartition(":")
                lines.append(f"{utt} {ark}:{offset}\n")
        os.replace(tmp_ark, ark)
        atomic_write_text(scp, "".join(lines))
        ok = True
    finally:
        tmp_scp.unlink(missing_ok=True)
        if not ok:
            tmp_ark.unlink(missing_ok=True)


# ---- reading a feats.scp and its info -------------------------------------------------------------------


def read_scp(path: str | os.PathLike) -> dict[str, str]:
    """`utt -> ark:offset` of a feats.scp (in file order); malformed lines and duplicates are errors."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2:
                raise ShardError(f"{path}:{n}: expected `utt ark:offset`, got {line.rstrip()!r}")
            if parts[0] in out:
                raise ShardError(f"{path}:{n}: duplicate utterance {parts[0]!r}")
            out[parts[0]] = parts[1]
    return out


def resolve_scp(path: str | os.PathLike) -> Path:
    """A feats.scp given as the file or as its directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "feats.scp"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such feats.scp (run the feature dump and its merge first)")
    return p


def write_feature_info(outdir: str | os.PathLike, info: dict) -> None:
    """Record what a feature dir holds: at least `dim` and `frame_rate` (frames per second)."""
    atomic_write_text(Path(outdir) / INFO_NAME, json.dumps(info, sort_keys=True, indent=1) + "\n")


def read_feature_info(scp: str | os.PathLike) -> dict | None:
    p = resolve_scp(scp).parent / INFO_NAME
    return json.loads(p.read_text()) if p.is_file() else None


def iter_feats(scp: str | os.PathLike, utts: Iterable[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, [T, D] float32) from a feats.scp, for `utts` (default: all, in file order)."""
    import kaldiio

    table = read_scp(resolve_scp(scp))
    for u in table if utts is None else utts:
        if u not in table:
            raise KeyError(f"{scp}: no features for utterance {u}")
        try:
            m = kaldiio.load_mat(table[u])
        except Exception as e:
            raise ShardError(f"{scp}: cannot read features of utterance {u} ({table[u]}): {e}") from e
        yield u, np.asarray(m, dtype=np.float32)
