"""Scale-invariant signal-to-distortion ratio (SI-SDR, Le Roux et al. 2019, "SDR - half-baked or well done?").

Both signals are made zero-mean, the estimate is projected onto the reference,
`target = <est, ref> / <ref, ref> * ref`, and everything else is distortion, `noise = est - target`:

    SI-SDR = 10 * log10(||target||^2 / ||noise||^2)

`eps` keeps the ratio finite: a perfect (scaled) estimate gives a large finite value, a silent
reference gives a finite value instead of a division by zero. SI-SDR improvement (SI-SDRi) is the
SI-SDR of the estimate minus that of the unprocessed mixture, both against the same reference.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_signal(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"si_sdr: {name} must be a 1-D signal, got shape {a.shape}")
    return a


def si_sdr(est: ArrayLike, ref: ArrayLike, eps: float = 1e-8) -> float:
    """SI-SDR in dB of the 1-D estimate `est` against the 1-D reference `ref` (same length)."""
    e = _as_signal(est, "est")
    r = _as_signal(ref, "ref")
    if e.shape != r.shape:
        raise ValueError(f"si_sdr: est has {e.shape[0]} samples but ref has {r.shape[0]}")
    e = e - e.mean()
    r = r - r.mean()
    alpha = float(np.dot(e, r)) / (float(np.dot(r, r)) + eps)
    target = alpha * r
    noise = e - target
    return float(10.0 * np.log10((float(np.dot(target, target)) + eps) / (float(np.dot(noise, noise)) + eps)))


def si_sdr_improvement(est: ArrayLike, ref: ArrayLike, mix: ArrayLike, eps: float = 1e-8) -> float:
    """SI-SDRi in dB: si_sdr(est, ref) - si_sdr(mix, ref)."""
    return si_sdr(est, ref, eps) - si_sdr(mix, ref, eps)
