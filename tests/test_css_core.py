"""Core pieces of continuous speech separation: SI-SDR, PIT loss, STFT round trip, sliding-window stitching."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from wavlm.metrics.sisdr import si_sdr, si_sdr_improvement
from wavlm.models.separation import (
    ContinuousSeparator,
    align_permutation,
    istft,
    pit_loss,
    reorder,
    sqrt_hann_window,
    stft,
)

# --------------------------------------------------------------------------------------------- SI-SDR

REF = np.array([1.0, -1.0, 1.0, -1.0])  # zero mean, energy 4
NOISE = np.array([1.0, 1.0, -1.0, -1.0])  # zero mean, orthogonal to REF, energy 4


def test_si_sdr_hand_computed() -> None:
    # target = REF (energy 4), noise = 0.5 * NOISE (energy 1): 10 log10(4)
    assert si_sdr(REF + 0.5 * NOISE, REF) == pytest.approx(10 * math.log10(4), abs=1e-6)
    # alpha = 3: target energy 36, noise energy 1
    assert si_sdr(3 * REF + 0.5 * NOISE, REF) == pytest.approx(10 * math.log10(36), abs=1e-6)
    # a DC offset is removed before projecting
    assert si_sdr(REF + 0.5 * NOISE + 5.0, REF - 2.0) == pytest.approx(10 * math.log10(4), abs=1e-6)
    # equal energies: 0 dB
    assert si_sdr(REF + NOISE, REF) == pytest.approx(0.0, abs=1e-6)


def test_si_sdr_perfect_estimate_is_very_large() -> None:
    ref = np.random.default_rng(0).standard_normal(1000)
    assert si_sdr(2 * ref, ref) > 80.0
    assert si_sdr(ref, ref) > 80.0


def test_si_sdr_orthogonal_noise_of_known_energy() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(4000)
    ref -= ref.mean()
    noise = rng.standard_normal(4000)
    noise -= noise.mean()
    noise -= np.dot(noise, ref) / np.dot(ref, ref) * ref  # orthogonal to ref, still zero mean
    for ratio in (0.01, 1.0, 30.0):
        n = noise * math.sqrt(np.dot(ref, ref) / (ratio * np.dot(noise, noise)))
        assert si_sdr(ref + n, ref) == pytest.approx(10 * math.log10(ratio), abs=1e-6)


def test_si_sdr_scale_invariant() -> None:
    rng = np.random.default_rng(2)
    ref = rng.standard_normal(500)
    est = ref + 0.3 * rng.standard_normal(500)
    base = si_sdr(est, ref)
    for scale in (0.01, 0.5, 7.0):
        # eps (1e-8 against energies down to ~1e-3 here) is the only thing that is not scale invariant
        assert si_sdr(scale * est, ref) == pytest.approx(base, abs=1e-4)
        assert si_sdr(est, scale * ref) == pytest.approx(base, abs=1e-4)
        assert si_sdr(scale * est, ref, eps=0.0) == pytest.approx(si_sdr(est, ref, eps=0.0), abs=1e-9)
        assert si_sdr(est, scale * ref, eps=0.0) == pytest.approx(si_sdr(est, ref, eps=0.0), abs=1e-9)


def test_si_sdr_improvement() -> None:
    # mixture at 0 dB, estimate at 10 log10(4): improvement 6.02 dB
    assert si_sdr_improvement(REF + 0.5 * NOISE, REF, REF + NOISE) == pytest.approx(10 * math.log10(4), abs=1e-6)


def test_si_sdr_bad_input() -> None:
    with pytest.raises(ValueError, match="est has 3 samples but ref has 4"):
        si_sdr(np.ones(3), REF)
    with pytest.raises(ValueError, match="1-D"):
        si_sdr(np.ones((2, 4)), np.ones((2, 4)))


# ------------------------------------------------------------------------------------------------ PIT


def _brute_force_pit(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    num = est.shape[1]
    losses = []
    for p in itertools.permutations(range(num)):
        losses.append(torch.stack([(est[:, p[j]] - ref[:, j]).pow(2).flatten(1).mean(1) for j in range(num)]).mean(0))
    return torch.stack(losses, 1).min(1).values


def test_pit_swapped_refs() -> None:
    ref = torch.randn(3, 2, 5, 7)
    est = ref[:, [1, 0]]
    loss, perm = pit_loss(est, ref)
    assert loss.shape == (3,)
    assert torch.allclose(loss, torch.zeros(3))
    assert perm.tolist() == [[1, 0]] * 3
    assert torch.equal(reorder(est, perm), ref)


def test_pit_three_sources_recovers_each_permutation() -> None:
    perms = list(itertools.permutations(range(3)))
    ref = torch.randn(len(perms), 3, 40)
    est = torch.empty_like(ref)
    for b, p in enumerate(perms):
        for j in range(3):
            est[b, p[j]] = ref[b, j]  # estimate p[j] is reference j
    loss, perm = pit_loss(est, ref)
    assert torch.allclose(loss, torch.zeros(len(perms)))
    assert [tuple(p) for p in perm.tolist()] == perms
    assert torch.equal(reorder(est, perm), ref)


def test_pit_fixed_last_keeps_noise_in_place() -> None:
    ref = torch.randn(2, 3, 30)
    est = ref[:, [2, 1, 0]]  # speech 0 and the noise swapped
    loss, perm = pit_loss(est, ref)
    assert torch.allclose(loss, torch.zeros(2)) and perm.tolist() == [[2, 1, 0]] * 2
    loss, perm = pit_loss(est, ref, fixed_last=True)
    assert (loss > 0).all()
    assert (perm[:, 2] == 2).all()
    est = ref[:, [1, 0, 2]]
    loss, perm = pit_loss(est, ref, fixed_last=True)
    assert torch.allclose(loss, torch.zeros(2)) and perm.tolist() == [[1, 0, 2]] * 2


def test_pit_matches_brute_force_and_custom_loss_fn() -> None:
    torch.manual_seed(0)
    est, ref = torch.randn(4, 3, 6, 5), torch.randn(4, 3, 6, 5)
    loss, _ = pit_loss(est, ref)
    assert torch.allclose(loss, _brute_force_pit(est, ref), atol=1e-6)
    # a loss_fn returning one value per utterance [B]
    loss2, _ = pit_loss(est, ref, loss_fn=lambda e, r: (e - r).pow(2).flatten(1).mean(1))
    assert torch.allclose(loss2, loss, atol=1e-6)


def test_pit_gradients_flow() -> None:
    torch.manual_seed(1)
    ref = torch.randn(2, 2, 4, 3)
    est = (ref[:, [1, 0]] + 0.1 * torch.randn_like(ref)).requires_grad_()
    loss, perm = pit_loss(est, ref)
    loss.sum().backward()
    assert est.grad is not None and est.grad.abs().sum() > 0
    # d/d est of mean over sources of mean squared error, with est[1] matched to ref[0] and vice versa
    expected = 2 * (est.detach() - ref[:, [1, 0]]) / (2 * 4 * 3)
    assert perm.tolist() == [[1, 0]] * 2
    assert torch.allclose(est.grad, expected, atol=1e-6)


def test_pit_bad_shapes() -> None:
    with pytest.raises(ValueError, match="must both be"):
        pit_loss(torch.zeros(2, 2, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="at least 2 sources"):
        pit_loss(torch.zeros(2, 1, 3), torch.zeros(2, 1, 3), fixed_last=True)


# ----------------------------------------------------------------------------------------------- STFT


def test_sqrt_hann_squared_overlap_adds_to_one() -> None:
    w2 = sqrt_hann_window(512).double() ** 2
    assert torch.allclose(w2[:256] + w2[256:], torch.ones(256, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("length", [300, 1536, 16000 + 77])
def test_stft_round_trip(length: int) -> None:
    torch.manual_seed(length)
    x = torch.randn(2, 3, length)
    spec = stft(x)
    assert spec.shape == (2, 3, 257, 1 + length // 256) and spec.is_complex()
    y = istft(spec, length)
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-5


def test_stft_configurable_and_framing() -> None:
    torch.manual_seed(3)
    x = torch.randn(4000, dtype=torch.float64)
    spec = stft(x, n_fft=400, hop_length=160)
    assert spec.shape == (201, 1 + 4000 // 160)
    assert (istft(spec, 4000, n_fft=400, hop_length=160) - x).abs().max() < 1e-10
    # frame t is the rFFT of the sqrt-Hann windowed samples centred at t * hop (zero padded at the ends)
    padded = torch.nn.functional.pad(x, (200, 200))
    win = sqrt_hann_window(400, dtype=torch.float64)
    for t in (0, 7, spec.shape[-1] - 1):
        frame = torch.fft.rfft(padded[t * 160 : t * 160 + 400] * win)
        assert torch.allclose(spec[:, t], frame, atol=1e-9)


# --------------------------------------------------------------------------------- continuous stitching

SR = 1000  # small sample rate: 0.8 / 1.2 / 0.4 s windows of 800 / 1200 / 400 samples
H, C, F = 800, 1200, 400
W = H + C + F


def _identity(win: torch.Tensor) -> torch.Tensor:
    return torch.stack([win, torch.zeros_like(win)])


@pytest.mark.parametrize("length", [0, 1, 777, W - 1, W, W + 1, W + C, W + C + 1, 10 * C + 123])
def test_identity_separator_reconstructs_input(length: int) -> None:
    x = torch.randn(length, generator=torch.Generator().manual_seed(length))
    css = ContinuousSeparator(_identity, sample_rate=SR)
    assert (css.hist_samples, css.cur_samples, css.fut_samples, css.window_samples) == (H, C, F, W)
    out = css(x)
    assert out.shape == (2, length)
    assert torch.equal(out[0], x)
    assert torch.equal(out[1], torch.zeros(length))
    # numpy in, numpy out
    out_np = css(x.numpy())
    assert isinstance(out_np, np.ndarray) and np.array_equal(out_np[0], x.numpy())


@pytest.mark.parametrize("length", [500, W, W + 1, 5 * C + 17])
def test_each_sample_comes_from_exactly_one_window(length: int) -> None:
    calls: list[int] = []

    def sep(win: torch.Tensor) -> torch.Tensor:
        k = len(calls) + 1
        calls.append(k)
        assert win.shape == (W,)
        return torch.stack([torch.full((W,), float(k)), torch.full((W,), -float(k))])

    css = ContinuousSeparator(sep, sample_rate=SR)
    out = css(torch.zeros(length))
    num = css.num_windows(length)
    assert len(calls) == num
    assert (num - 1) * C + W >= length and (num == 1 or (num - 2) * C + W < length)
    expected = torch.empty(length)
    for k in range(num):  # window 0: history + current; window k: its current; the last: also its future
        first = 0 if k == 0 else H + k * C
        end = length if k == num - 1 else H + (k + 1) * C
        expected[first:end] = k + 1
    assert torch.equal(out[0], expected)
    assert torch.equal(out[1], -expected)


def test_stitching_resolves_random_window_permutations() -> None:
    rng = np.random.default_rng(0)
    n = 12 * C + 345
    s1, s2 = rng.standard_normal(n), 0.5 * rng.standard_normal(n)
    s1[3000:5000] = 0.0  # single-speaker stretches, never both silent on a shared region
    s2[6000:8000] = 0.0
    sources = torch.from_numpy(np.stack([s1, s2]))
    css = ContinuousSeparator(lambda w: w, sample_rate=SR)
    total = (css.num_windows(n) - 1) * C + W
    padded = torch.nn.functional.pad(sources, (0, total - n))
    swaps: list[bool] = []

    def sep(win: torch.Tensor) -> torch.Tensor:
        start = len(swaps) * C
        assert torch.equal(win, padded.sum(0)[start : start + W])
        swap = bool(rng.integers(2))
        swaps.append(swap)
        y = padded[:, start : start + W]
        return y.flip(0) if swap else y

    css.separate = sep
    out = css(sources.sum(0))
    assert any(swaps) and not all(swaps)
    if torch.equal(out[0], sources[0]):
        assert torch.equal(out[1], sources[1])
    else:
        assert torch.equal(out[0], sources[1]) and torch.equal(out[1], sources[0])


def test_align_permutation() -> None:
    torch.manual_seed(5)
    prev = torch.randn(3, 100)
    assert align_permutation(prev, prev[[2, 0, 1]]) == (1, 2, 0)
    assert align_permutation(prev, prev) == (0, 1, 2)
    assert align_permutation(torch.zeros(2, 10), torch.randn(2, 10)) == (0, 1)  # tie keeps the order


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(current=0.0), "current=0.0"),
        (dict(current=-1.2), "current=-1.2"),
        (dict(history=-0.1), "history=-0.1"),
        (dict(future=-0.4), "future=-0.4"),
        (dict(sample_rate=0), "sample_rate=0"),
        (dict(current=1e-5), "shorter than one sample"),
        (dict(history=0.0, future=0.0), "history \\+ future"),
    ],
)
def test_invalid_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ContinuousSeparator(_identity, **{"sample_rate": SR, **kwargs})


def test_bad_separator_output_and_input() -> None:
    css = ContinuousSeparator(lambda w: w[None, :-1], sample_rate=SR)
    with pytest.raises(ValueError, match=f"must return \\[streams, {W}\\]"):
        css(torch.zeros(100))
    with pytest.raises(ValueError, match=r"expected a recording \[S\] or \[channels, S\]"):
        ContinuousSeparator(_identity, sample_rate=SR)(torch.zeros(2, 3, 100))


def test_multichannel_windows_reach_the_separator_whole() -> None:
    # [C, S] recordings: separate() gets [C, W] windows; returning channel 0 rebuilds channel 0 exactly
    x = torch.randn(3, 5 * W + 17)
    seen = []

    def first_channel(w: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(w.shape))
        return w[:1]

    out = ContinuousSeparator(first_channel, sample_rate=SR)(x)
    assert set(seen) == {(3, W)}
    assert torch.equal(out[0], x[0])
