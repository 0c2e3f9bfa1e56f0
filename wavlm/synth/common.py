"""Shared helpers of the corpus generators: seeded generators, atomic writes, completion markers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent generator for (seed, keys...), stable across runs and Python versions."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV or FLAC (chosen by the suffix) atomically; clips to [-1, 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".flac": "FLAC", ".wav": "WAV"}[path.suffix.lower()]
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    tmp = _tmp(path)
    sf.write(str(tmp), pcm, sample_rate, format=fmt, subtype="PCM_16")
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_lines(path: str | Path, lines: list[str]) -> None:
    write_text(path, "".join(line + "\n" for line in lines))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def normalize(audio: np.ndarray, peak: float) -> np.ndarray:
    """Scale so the absolute peak is `peak` (silence stays silence)."""
    m = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (peak / m)).astype(np.float32) if m > 0 else audio.astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


class Completion:
    """`.done.<corpus>` marker under the output dir, holding the parameters the corpus was made with.

    A complete corpus with the same parameters is skipped; different parameters are an error unless
    `overwrite`, which removes the corpus' own directories first.
    """

    def __init__(self, out: Path, corpus: str, params: dict[str, Any], roots: list[Path]) -> None:
        self.marker = out / f".done.{corpus}"
        self.corpus = corpus
        self.params = params
        self.roots = roots

    def skip(self, overwrite: bool = False) -> bool:
        if self.marker.exists():
            old = json.loads(self.marker.read_text())
            if old == self.params and not overwrite:
                logger.info(
                    "%s: complete in %s with the same parameters; skipping", self.corpus, self.marker.parent
                )
                return True
            if not overwrite:
                raise RuntimeError(
                    f"{self.marker}: {self.corpus} was generated with other parameters {old}; "
                    f"use --overwrite or another --out"
                )
        if overwrite:
            for root in self.roots:
                if root.exists():
                    logger.info("removing %s", root)
                    shutil.rmtree(root)
        return False

    def done(self) -> None:
        self.marker.unlink(missing_ok=True)
        write_json(self.marker, self.params)
