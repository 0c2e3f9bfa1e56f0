"""Synthetic speakers and speech from espeak-ng.

A speaker is an espeak-ng voice (an English base voice plus a variant such as `en-us+m3`) with its own
pitch, pitch range, speaking rate and amplitude, so a few hundred clearly different speakers exist.
Each sentence is one fresh `espeak-ng --stdout` process (~15 ms): the in-process library keeps
state between calls (noise generator, pitch phase), so its output for the same text drifts by a few
samples from call to call, while a fresh process is byte-identical. espeak-ng speaks at 22.05 kHz;
everything is resampled to 16 kHz with a deterministic polyphase filter.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050

# English base voices shipped with espeak-ng (no MBROLA needed).
BASE_VOICES = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# Variants that sound like a human reader (no whisper, robots or effects), with their sex.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("m1", "M"),
    ("m2", "M"),
    ("m3", "M"),
    ("m4", "M"),
    ("m5", "M"),
    ("m6", "M"),
    ("m7", "M"),
    ("m8", "M"),
    ("f1", "F"),
    ("f2", "F"),
    ("f3", "F"),
    ("f4", "F"),
    ("f5", "F"),
    ("Andy", "M"),
    ("Annie", "F"),
    ("Alicia", "F"),
    ("Andrea", "F"),
    ("Denis", "M"),
    ("Diogo", "M"),
    ("Henrique", "M"),
    ("Hugo", "M"),
    ("Lee", "M"),
    ("Marco", "M"),
    ("Storm", "M"),
    ("anika", "F"),
    ("antonio", "M"),
    ("aunty", "F"),
    ("belinda", "F"),
    ("grandma", "F"),
    ("linda", "F"),
    ("michel", "M"),
    ("miguel", "M"),
    ("sandro", "M"),
    ("steph", "F"),
    ("steph2", "F"),
    ("steph3", "F"),
    ("travis", "M"),
    ("victor", "M"),
    ("david", "M"),
    ("ed", "M"),
    ("john", "M"),
    ("max", "M"),
    ("paul", "M"),
    ("rob", "M"),
    ("robert", "M"),
    ("adam", "M"),
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice name and its prosody settings."""

    name: str  # espeak-ng voice, e.g. "en-us+m3"
    sex: str  # "M" or "F"
    pitch: int  # 0..99
    pitch_range: int  # 0..99
    rate: int  # words per minute
    amplitude: int  # 0..200
    word_gap: int = 0  # extra pause between words, 10 ms units


def espeak_data_dir() -> str | None:
    """Directory holding espeak-ng's voices, or None if espeak-ng is not installed."""
    for d in (
        "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
        "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
        "/usr/share/espeak-ng-data",
        "/usr/local/share/espeak-ng-data",
        "/usr/lib/espeak-ng-data",
    ):
        if os.path.isdir(os.path.join(d, "voices")):
            return d
    return None


def available_variants() -> list[tuple[str, str]]:
    """The variants of `VARIANTS` that this espeak-ng installation has."""
    data = espeak_data_dir()
    if data is None:
        return list(VARIANTS)
    vdir = os.path.join(data, "voices", "!v")
    have = set(os.listdir(vdir)) if os.path.isdir(vdir) else set()
    out = [v for v in VARIANTS if v[0] in have]
    return out or list(VARIANTS)


def make_voices(n: int, rng: np.random.Generator) -> list[Voice]:
    """`n` distinct speakers (distinct voice+variant combinations while they last, then new prosody)."""
    combos = [(b, v, s) for b in BASE_VOICES for v, s in available_variants()]
    order = rng.permutation(len(combos))
    voices: list[Voice] = []
    for i in range(n):
        base, variant, sex = combos[int(order[i % len(combos)])]
        voices.append(
            Voice(
                name=f"{base}+{variant}",
                sex=sex,
                pitch=int(rng.integers(25, 76)),
                pitch_range=int(rng.integers(30, 80)),
                rate=int(rng.integers(140, 191)),
                amplitude=int(rng.integers(70, 131)),
                word_gap=int(rng.integers(0, 2)),
            )
        )
    return voices


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: `apt-get install espeak-ng` (Debian/Ubuntu)")
    return exe


def _synth_raw(text: str, voice: Voice) -> np.ndarray:
    """22.05 kHz int16 speech from one fresh espeak-ng process (fresh state -> byte-identical output)."""
    cmd = [
        _espeak_exe(),
        "-v",
        voice.name,
        "-s",
        str(voice.rate),
        "-p",
        str(voice.pitch),
        "-a",
        str(voice.amplitude),
        "-g",
        str(voice.word_gap),
        "-z",
        "--stdout",
        text,
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"espeak-ng failed for voice {voice.name!r}: {proc.stderr.decode(errors='replace')}"
        )
    raw = proc.stdout
    # the streamed WAV header carries a placeholder length: take the PCM after the 44-byte header
    if raw[:4] != b"RIFF" or len(raw) < 44:
        raise RuntimeError(f"espeak-ng wrote no WAV for voice {voice.name!r}")
    pcm = raw[44:]
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")


def resample_to_16k(x: np.ndarray) -> np.ndarray:
    """22.05 kHz int16/float -> 16 kHz float32 (polyphase, deterministic)."""
    y = resample_poly(x.astype(np.float64) / 32768.0, 320, 441)
    return y.astype(np.float32)


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """Speak `text` (upper-case words, spoken in lower case so nothing is read as an acronym) -> 16 kHz."""
    return resample_to_16k(_synth_raw(text.lower(), voice))


def _synth_job(job: tuple[str, Voice]) -> np.ndarray:
    return synthesize(*job)


def synthesize_many(jobs: list[tuple[str, Voice]], num_workers: int = 1) -> list[np.ndarray]:
    """Synthesise many (text, voice) pairs, in order, with up to `num_workers` processes."""
    if num_workers <= 1 or len(jobs) < 16:
        return [synthesize(t, v) for t, v in jobs]
    chunk = max(1, len(jobs) // (num_workers * 8))
    with ProcessPoolExecutor(max_workers=num_workers) as pool:
        return list(pool.map(_synth_job, jobs, chunksize=chunk))
