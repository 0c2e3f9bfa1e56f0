"""Kaldi data directories: reading, validation and the usual manipulations.

Implemented once here; `utils/*.sh` are thin wrappers around `python -m wavlm.bin.datadir`.
Files follow Kaldi: `wav.scp` (rec -> path or pipe), optional `segments` (utt rec start end),
`utt2spk`, `spk2utt`, `text`, `utt2dur`, `reco2dur`, `spk2gender`. All sorted in C locale.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavlm.data.audio import AudioError, read_audio

# Per-utterance files (keyed by utterance id) that are filtered/split with the utterance list.
UTT_FILES = ("utt2spk", "text", "utt2dur", "utt2num_frames", "feats.scp", "utt2lang")
# Per-recording files (keyed by recording id).
REC_FILES = ("wav.scp", "reco2dur", "reco2file_and_channel")
SPK_FILES = ("spk2utt", "spk2gender")


class DataDirError(ValueError):
    """A data directory that is malformed; the message names the file and line."""


@dataclass
class Table:
    """An ordered `key rest-of-line` file with line numbers kept for error messages."""

    path: Path
    rows: dict[str, str] = field(default_factory=dict)
    lineno: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.path}:{self.lineno.get(key, '?')}"

    def keys(self) -> list[str]:
        return list(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __getitem__(self, key: str) -> str:
        return self.rows[key]

    def __len__(self) -> int:
        return len(self.rows)


def read_table(path: str | os.PathLike, *, allow_empty_value: bool = False) -> Table:
    """Read a Kaldi `key value...` file. Duplicate keys and malformed lines are errors."""
    path = Path(path)
    table = Table(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                raise DataDirError(f"{path}:{n}: empty line")
            key, _, value = line.partition(" ")
            if not key or key != key.strip() or line != line.strip():
                raise DataDirError(f"{path}:{n}: leading/trailing whitespace or bad key in {line!r}")
            value = value.strip()
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{n}: key {key!r} has no value")
            if key in table.rows:
                raise DataDirError(
                    f"{path}:{n}: duplicate id {key!r} (first seen on line {table.lineno[key]})"
                )
            table.rows[key] = value
            table.lineno[key] = n
    return table


def write_table(path: str | os.PathLike, rows: Iterable[tuple[str, str]]) -> None:
    """Write `key value` lines sorted in C locale (byte order), atomically."""
    lines = sorted((f"{k} {v}".rstrip() + "\n" for k, v in rows), key=lambda s: s.split(" ", 1)[0].encode())
    atomic_write_text(path, "".join(lines))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary name in the same directory and rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def c_sorted(keys: Iterable[str]) -> list[str]:
    """Sort as `LC_ALL=C sort` does (byte order)."""
    return sorted(keys, key=lambda s: s.encode())


@dataclass
class Segment:
    rec: str
    start: float
    end: float


class DataDir:
    """A Kaldi data directory, read lazily file by file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataDirError(f"{self.path}: not a directory (expected a Kaldi data dir)")
        if not (self.path / "wav.scp").is_file() and not (self.path / "feats.scp").is_file():
            raise DataDirError(f"{self.path}: has neither wav.scp nor feats.scp")
        self._cache: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        if name not in self._cache:
            p = self.path / name
            self._cache[name] = read_table(p, allow_empty_value=name == "text") if p.is_file() else None
        return self._cache[name]

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    @property
    def wav_scp(self) -> Table:
        t = self.table("wav.scp")
        if t is None:
            raise DataDirError(f"{self.path}: missing wav.scp")
        return t

    @property
    def segments(self) -> dict[str, Segment] | None:
        t = self.table("segments")
        if t is None:
            return None
        out = {}
        for utt, value in t.rows.items():
            parts = value.split()
            if len(parts) != 3:
                raise DataDirError(f"{t.where(utt)}: expected `utt rec start end`, got {utt} {value!r}")
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                raise DataDirError(f"{t.where(utt)}: start/end are not numbers: {value!r}") from None
            out[utt] = Segment(parts[0], start, end)
        return out

    def utt_ids(self) -> list[str]:
        """Utterance ids, from segments if present, else wav.scp (or feats.scp)."""
        for name in ("segments", "wav.scp", "feats.scp"):
            t = self.table(name)
            if t is not None:
                return t.keys()
        return []

    def utt2spk(self) -> dict[str, str]:
        t = self.table("utt2spk")
        return dict(t.rows) if t is not None else {u: u for u in self.utt_ids()}

    def text(self) -> dict[str, str]:
        t = self.table("text")
        if t is None:
            raise DataDirError(f"{self.path}: missing text")
        return dict(t.rows)

    def utt2dur(self) -> dict[str, float]:
        t = self.table("utt2dur")
        if t is None:
            raise DataDirError(f"{self.path}: missing utt2dur (run utils/data/get_utt2dur.sh {self.path})")
        return {k: float(v) for k, v in t.rows.items()}

    def describe(self, utt: str) -> str:
        """`file:line (utt X)` for error messages about an utterance's audio."""
        segs = self.table("segments")
        if segs is not None and utt in segs:
            rec = segs[utt].split()[0]
            return f"{self.wav_scp.where(rec)} (utterance {utt}, recording {rec})"
        return f"{self.wav_scp.where(utt)} (utterance {utt})"

    def load_audio(self, utt: str) -> tuple[np.ndarray, int]:
        """Audio of one utterance (cut from its recording when there are segments)."""
        segs = self.segments
        what = self.describe(utt)
        if segs is None:
            if utt not in self.wav_scp:
                raise DataDirError(f"{self.path}/wav.scp: no entry for utterance {utt}")
            return read_audio(self.wav_scp[utt], what=what)
        seg = segs.get(utt)
        if seg is None:
            raise DataDirError(f"{self.path}/segments: no entry for utterance {utt}")
        if seg.rec not in self.wav_scp:
            raise DataDirError(f"{self.path}/segments: recording {seg.rec} of {utt} is not in wav.scp")
        wav, sr = read_audio(self.wav_scp[seg.rec], what=what)
        a, b = int(round(seg.start * sr)), int(round(seg.end * sr))
        if b > wav.shape[0] + sr // 100:  # Kaldi tolerates rounding; we allow 10 ms
            raise AudioError(f"{what}: segment ends at {seg.end:.2f}s, recording is {wav.shape[0] / sr:.2f}s")
        return wav[a:b], sr

    def iter_audio(self, utts: Iterable[str] | None = None) -> Iterator[tuple[str, np.ndarray, int]]:
        """Yield (utt, audio, sample_rate), reading each recording once when segments share it."""
        utts = self.utt_ids() if utts is None else list(utts)
        segs = self.segments
        if segs is None:
            for u in utts:
                wav, sr = self.load_audio(u)
                yield u, wav, sr
            return
        cur_rec, cur = None, None
        for u in utts:
            seg = segs[u]
            if seg.rec != cur_rec:
                cur_rec = seg.rec
                cur = read_audio(self.wav_scp[seg.rec], what=self.describe(u))
            wav, sr = cur
            yield u, wav[int(round(seg.start * sr)) : int(round(seg.end * sr))], sr
