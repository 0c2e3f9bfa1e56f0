"""LibriSpeech-style read utterances: speakers with numeric ids, sentences, synthesis and padding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wavlm.synth.common import SAMPLE_RATE, normalize, rng_for, silence
from wavlm.synth.speech import Voice, synthesize_many
from wavlm.synth.vocab import Grammar


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: Voice

    @property
    def sex(self) -> str:
        return self.voice.sex


def unique_ids(
    rng: np.random.Generator, n: int, low: int, high: int, taken: set[int] | None = None
) -> list[int]:
    """`n` distinct integers in [low, high) not in `taken` (which is updated)."""
    taken = taken if taken is not None else set()
    out: list[int] = []
    while len(out) < n:
        v = int(rng.integers(low, high))
        if v not in taken:
            taken.add(v)
            out.append(v)
    return out


def sentences(rng: np.random.Generator, n: int, max_clauses: int = 2) -> list[str]:
    g = Grammar(rng)
    return [" ".join(g.sentence(max_clauses)) for _ in range(n)]


def speak(
    items: list[tuple[str, Voice]],
    rng: np.random.Generator,
    num_workers: int,
    pad: tuple[float, float] = (0.1, 0.35),
    peak: tuple[float, float] = (0.3, 0.9),
) -> list[np.ndarray]:
    """Synthesise (text, voice) items, add random leading/trailing silence and a random level."""
    pads = rng.uniform(pad[0], pad[1], size=(len(items), 2))
    peaks = rng.uniform(peak[0], peak[1], size=len(items))
    audios = synthesize_many(items, num_workers)
    return [
        np.concatenate([silence(a), normalize(x, p), silence(b)])
        for x, (a, b), p in zip(audios, pads, peaks, strict=True)
    ]


def speech_bounds(x: np.ndarray, threshold: float = 1e-3) -> tuple[int, int]:
    """First and one-past-last sample whose magnitude exceeds `threshold` (0, 0 for silence)."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


def duration(x: np.ndarray) -> float:
    return len(x) / SAMPLE_RATE


__all__ = ["Speaker", "unique_ids", "sentences", "speak", "speech_bounds", "duration", "rng_for"]
