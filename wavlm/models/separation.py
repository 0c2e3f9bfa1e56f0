"""Building blocks of mask-based continuous speech separation (CSS) for LibriCSS, as in the WavLM paper.

* `stft` / `istft`: the STFT the separator masks (sqrt-Hann window, 512-point FFT, hop 256 at 16 kHz
  by default); `istft(stft(x), len(x))` reconstructs `x` (the squared window overlap-adds to a
  constant and torch's istft divides by the window envelope anyway).
* `pit_loss`: permutation-invariant training loss (Yu et al. 2017) over all permutations of the
  sources, optionally keeping the last source (the noise mask) out of the permutation.
* `ContinuousSeparator`: sliding-window inference over a long recording as in the LibriCSS CSS setup
  (Chen et al. 2020, "Continuous speech separation: dataset and analysis"). Windows of
  `history + current + future` seconds advance by `current`; each window is separated on its own,
  its output streams are reordered to match the previous window's on the samples the two windows
  share, and each window contributes the `current` part of its streams (the first window also its
  history, the last one also its future), so every sample of the session comes from exactly one window.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# ---------------------------------------------------------------------------------------------- STFT


def sqrt_hann_window(n_fft: int, device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Square root of the periodic Hann window of `n_fft` samples."""
    return torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype).sqrt()


def stft(x: Tensor, n_fft: int = 512, hop_length: int = 256) -> Tensor:
    """Complex STFT of `x` [..., S] -> [..., n_fft // 2 + 1, frames] (centred frames, zero padded)."""
    if x.dim() < 1:
        raise ValueError(f"stft: expected a signal [..., S], got a tensor of shape {tuple(x.shape)}")
    lead = x.shape[:-1]
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft=n_fft,
        hop_length=hop_length,
        window=sqrt_hann_window(n_fft, x.device, x.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: Tensor, length: int, n_fft: int = 512, hop_length: int = 256) -> Tensor:
    """Inverse of `stft`: complex [..., F, frames] -> real [..., length]."""
    if spec.dim() < 2:
        raise ValueError(f"istft: expected a spectrogram [..., F, frames], got shape {tuple(spec.shape)}")
    lead = spec.shape[:-2]
    wav = torch.istft(
        spec.reshape(-1, *spec.shape[-2:]),
        n_fft=n_fft,
        hop_length=hop_length,
        window=sqrt_hann_window(n_fft, spec.device, spec.real.dtype),
        center=True,
        length=length,
    )
    return wav.reshape(*lead, length)


# ----------------------------------------------------------------------------------------------- PIT


def _mse(est: Tensor, ref: Tensor) -> Tensor:
    return (est - ref).pow(2)


def pit_loss(
    est: Tensor,
    ref: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = _mse,
    fixed_last: bool = False,
) -> tuple[Tensor, Tensor]:
    """Permutation-invariant loss of `est` [B, S, ...] against `ref` [B, S, ...].

    `loss_fn(est_i, ref_j)` gets one source of each, [B, ...], and returns an elementwise loss
    (averaged over all but the batch dimension here) or a loss per utterance [B]. The loss of a
    permutation is the mean over sources of the pair losses; the minimum over all S! permutations
    (over the first S - 1 sources, the last one matched to the last, when `fixed_last`) is returned
    per utterance with that permutation: `perm[b, j]` is the estimate matched to reference `j`, so
    `reorder(est, perm)` puts the estimates in reference order. Gradients flow through the minimum.
    """
    if est.shape != ref.shape or est.dim() < 2:
        raise ValueError(f"pit_loss: est {tuple(est.shape)} and ref {tuple(ref.shape)} must both be [B, S, ...]")
    batch, num_src = est.shape[:2]
    num_perm = num_src - 1 if fixed_last else num_src
    if num_perm < 1:
        raise ValueError(f"pit_loss: fixed_last needs at least 2 sources, got {num_src}")
    # pair[b, i, j]: loss of estimate i against reference j
    rows = []
    for i in range(num_src):
        cols = []
        for j in range(num_src):
            loss = loss_fn(est[:, i], ref[:, j])
            cols.append(loss.reshape(batch, -1).mean(dim=1))
        rows.append(torch.stack(cols, dim=1))
    pair = torch.stack(rows, dim=1)
    perms = [p + ((num_src - 1,) if fixed_last else ()) for p in itertools.permutations(range(num_perm))]
    perm_t = torch.tensor(perms, dtype=torch.long, device=est.device)  # [P, S], perm_t[p, j] = estimate for ref j
    ref_idx = torch.arange(num_src, device=est.device)
    per_perm = pair[:, perm_t, ref_idx].mean(dim=-1)  # [B, P]
    loss, best = per_perm.min(dim=1)
    return loss, perm_t[best]


def reorder(est: Tensor, perm: Tensor) -> Tensor:
    """est [B, S, ...] reordered by `perm` [B, S] from `pit_loss`: out[b, j] = est[b, perm[b, j]]."""
    return est[torch.arange(est.shape[0], device=est.device)[:, None], perm]


# ------------------------------------------------------------------------------ continuous separation


def align_permutation(prev: Tensor, cur: Tensor) -> tuple[int, ...]:
    """Order of `cur`'s streams [N, L] that best matches `prev` [N, L] on the same L samples.

    Returns `perm` with `cur[perm[k]]` matched to `prev[k]`, maximising the summed correlation
    sum_k <prev[k], cur[perm[k]]> (the same choice as minimising the summed squared error). Ties
    (e.g. silence in the shared samples) keep the current order.
    """
    corr = prev.double() @ cur.double().T  # corr[k, m] = <prev[k], cur[m]>
    n = corr.shape[0]
    best, best_score = tuple(range(n)), float(corr.trace())
    for p in itertools.permutations(range(n)):
        score = float(sum(corr[k, p[k]] for k in range(n)))
        if score > best_score:
            best, best_score = p, score
    return best


@dataclass
class ContinuousSeparator:
    """Sliding-window separation of a long recording into continuous output streams.

    `separate(window [W]) -> [N, W]` separates one window (a float tensor of W = h + c + f samples; [C, W]
    for a multi-channel recording [C, S]) into N streams (2 for LibriCSS). Windows start every c samples
    at 0, c, 2c, ...; the recording is zero padded at the end to the last window's end, and a recording
    shorter than one window is padded and separated as one window. Calls run under `torch.no_grad()`.
    Output: [N, S], a tensor, or a numpy array when the input is one.
    """

    separate: Callable[[Tensor], Tensor]
    history: float = 0.8
    current: float = 1.2
    future: float = 0.4
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        settings = (
            f"history={self.history}, current={self.current}, future={self.future}, sample_rate={self.sample_rate}"
        )
        if not self.sample_rate > 0:
            raise ValueError(f"ContinuousSeparator: sample_rate must be positive ({settings})")
        if not self.current > 0 or self.history < 0 or self.future < 0:
            raise ValueError(
                f"ContinuousSeparator: need current > 0, history >= 0 and future >= 0 seconds ({settings})"
            )
        self.hist_samples = round(self.history * self.sample_rate)
        self.cur_samples = round(self.current * self.sample_rate)
        self.fut_samples = round(self.future * self.sample_rate)
        if self.cur_samples < 1:
            raise ValueError(f"ContinuousSeparator: current is shorter than one sample ({settings})")
        if self.hist_samples + self.fut_samples < 1:
            raise ValueError(
                "ContinuousSeparator: history + future must be at least one sample, consecutive windows "
                f"are aligned on the samples they share ({settings})"
            )

    @property
    def window_samples(self) -> int:
        return self.hist_samples + self.cur_samples + self.fut_samples

    def num_windows(self, num_samples: int) -> int:
        """Windows needed for a recording of `num_samples`: the last one ends at or after its end."""
        return max(1, math.ceil((num_samples - self.window_samples) / self.cur_samples) + 1)

    def segments(self, num_samples: int) -> list[tuple[int, int, int]]:
        """(window start, first, end) per window: the window owns output samples [first, end)."""
        num = self.num_windows(num_samples)
        h, c = self.hist_samples, self.cur_samples
        out = []
        for k in range(num):
            first = 0 if k == 0 else h + k * c
            end = num_samples if k == num - 1 else h + (k + 1) * c
            out.append((k * c, first, end))
        return out

    def __call__(self, wav: Tensor | np.ndarray) -> Tensor | np.ndarray:
        as_numpy = not isinstance(wav, Tensor)
        x = torch.as_tensor(wav)
        if x.dim() not in (1, 2):
            raise ValueError(f"ContinuousSeparator: expected a recording [S] or [channels, S], got shape "
                             f"{tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.float()
        n, w, c = x.shape[-1], self.window_samples, self.cur_samples
        segs = self.segments(n)
        total = segs[-1][0] + w
        x = torch.nn.functional.pad(x, (0, total - n))
        out: Tensor | None = None
        prev: Tensor | None = None
        with torch.no_grad():
            for start, first, end in segs:
                y = torch.as_tensor(self.separate(x[..., start : start + w]))
                if y.dim() != 2 or y.shape[1] != w:
                    raise ValueError(
                        f"ContinuousSeparator: separate() must return [streams, {w}] for a window of {w} "
                        f"samples, got shape {tuple(y.shape)} (window at sample {start})"
                    )
                if out is None:
                    out = y.new_zeros(y.shape[0], n)
                elif y.shape[0] != out.shape[0]:
                    raise ValueError(
                        f"ContinuousSeparator: separate() returned {y.shape[0]} streams at sample {start}, "
                        f"{out.shape[0]} before"
                    )
                if prev is not None:
                    # this window's samples [0, w - c) are the previous window's [c, w)
                    perm = align_permutation(prev[:, c:], y[:, : w - c])
                    y = y[list(perm)]
                out[:, first:end] = y[:, first - start : end - start]
                prev = y
        assert out is not None
        return out.numpy() if as_numpy else out
