"""Signal effects used to make the synthetic corpora less trivial: channel colouring, noise, rooms."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, lfilter

from wavlm.synth.common import SAMPLE_RATE


def peaking_eq(freq: float, gain_db: float, q: float, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Biquad peaking equaliser (RBJ cookbook)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return b / den[0], den / den[0]


def random_channel(rng: np.random.Generator) -> dict:
    """Parameters of a random recording channel: a few EQ bands, a low-pass pole, gain and noise level."""
    bands = [
        (float(rng.uniform(150, 6000)), float(rng.uniform(-9, 9)), float(rng.uniform(0.7, 2.5)))
        for _ in range(3)
    ]
    return {
        "bands": bands,
        "lowpass": float(rng.uniform(0.0, 0.6)),
        "gain_db": float(rng.uniform(-6, 3)),
        "snr_db": float(rng.uniform(15, 35)),
        "noise_seed": int(rng.integers(2**31)),
    }


def apply_channel(x: np.ndarray, channel: dict, rng: np.random.Generator) -> np.ndarray:
    """Colour `x` with `channel` (from `random_channel`) and add white-ish noise at its SNR."""
    y = x.astype(np.float64)
    for f, g, q in channel["bands"]:
        b, a = peaking_eq(f, g, q)
        y = lfilter(b, a, y)
    p = channel["lowpass"]
    y = lfilter([1 - p], [1, -p], y)
    y *= 10 ** (channel["gain_db"] / 20)
    return add_noise(y, channel["snr_db"], rng).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, colour: float = 0.0) -> np.ndarray:
    """Add noise (colour 0 white, 1 pink-ish, 2 brown-ish) at `snr_db` relative to the signal power."""
    n = coloured_noise(len(x), colour, rng)
    px = float(np.mean(x.astype(np.float64) ** 2)) + 1e-12
    pn = float(np.mean(n**2)) + 1e-12
    return x + n * np.sqrt(px / pn / 10 ** (snr_db / 10))


def coloured_noise(n: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f^colour power spectrum, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= f ** (colour / 2)
    y = np.fft.irfft(spec, n)
    return y / (np.std(y) + 1e-12)


def convolve(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Reverberate `x` with one RIR (result as long as `x`)."""
    return fftconvolve(x, rir)[: len(x)].astype(np.float32)
