"""Utterance mixing (wavlm/data/mixing.py) against the released rule: the energy ratio is that of the whole primary
to the whole (scaled) interfering source, the interference covers at most half of the primary, noise is not looped."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wavlm.data.mixing import MixConfig, mix_batch


def power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2))


def uneven(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise whose loudness changes along the utterance, so that the power of a region differs from the whole's."""
    envelope = np.repeat(rng.uniform(0.02, 1.0, 8), n // 8 + 1)[:n]
    return (rng.standard_normal(n) * envelope).astype(np.float32)


def test_energy_ratio_of_whole_utterances_is_realised():
    """Primary: loudness varying along it; interference: random signs of constant magnitude c, so the scale is
    read off the added samples without knowing where the segment was cut."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n, c = 8000, 0.3
        wavs = np.stack([uneven(rng, n), c * rng.choice([-1.0, 1.0], n)]).astype(np.float32)
        out, infos = mix_batch(wavs, np.full(2, n), MixConfig(prob=1.0), np.random.default_rng(seed))
        info = infos[0]
        assert info.kind == "utterance" and info.source == 1 and -5 <= info.snr <= 5
        added = (out[0] - wavs[0]).astype(np.float64)[info.start:info.start + info.length]
        scale = float(np.mean(np.abs(added))) / c
        realised = 10 * math.log10(power(wavs[0]) / (scale ** 2 * c ** 2))
        assert realised == pytest.approx(info.snr, abs=0.01)


@pytest.mark.parametrize("noise_prob", [0.0, 1.0])
def test_energy_ratio_region_and_source_segment(noise_prob):
    rng = np.random.default_rng(0)
    n = 16000
    wavs = np.stack([uneven(rng, n) for _ in range(8)])
    lengths = np.array([n, n, n, 12000, n, 9000, n, n])
    for k, m in enumerate(lengths):
        wavs[k, m:] = 0
    noises = [uneven(rng, 30000), uneven(rng, 20000)]
    out, infos = mix_batch(wavs, lengths, MixConfig(prob=1.0, noise_prob=noise_prob), np.random.default_rng(1),
                           noises)
    lo, hi = (-5, 20) if noise_prob else (-5, 5)
    for i, info in enumerate(infos):
        assert info.kind == ("noise" if noise_prob else "utterance")
        assert lo <= info.snr <= hi
        source = noises[info.source] if noise_prob else wavs[info.source, : lengths[info.source]]
        if not noise_prob:
            assert info.source != i
        assert 1 <= info.length <= lengths[i] // 2
        assert info.start + info.length <= lengths[i] and info.source_start + info.length <= len(source)
        added = (out[i] - wavs[i]).astype(np.float64)
        assert not added[: info.start].any() and not added[info.start + info.length:].any()
        seg = source[info.source_start: info.source_start + info.length].astype(np.float64)
        scale = float(added[info.start: info.start + info.length] @ seg / (seg @ seg))
        np.testing.assert_allclose(added[info.start: info.start + info.length], scale * seg, rtol=1e-4, atol=1e-6)
        realised = 10 * math.log10(power(wavs[i, : lengths[i]]) / (scale ** 2 * power(source)))
        assert realised == pytest.approx(info.snr, abs=0.01)


def test_length_covers_up_to_half_of_the_primary():
    def lengths(n: int) -> list[int]:
        draws = []
        for seed in range(60):
            wavs = np.random.default_rng(seed).standard_normal((8, n)).astype(np.float32)
            _, infos = mix_batch(wavs, np.full(8, n), MixConfig(prob=1.0), np.random.default_rng(seed))
            draws += [i.length for i in infos]
        return draws

    assert set(lengths(11)) == {1, 2, 3, 4, 5}  # U{1 .. floor(n / 2)}
    assert np.mean(lengths(1000)) == pytest.approx(1000 / 4, rel=0.1)


def test_noise_shorter_than_the_draw_is_not_looped():
    rng = np.random.default_rng(0)
    wavs = rng.standard_normal((4, 16000)).astype(np.float32)
    noise = rng.standard_normal(100).astype(np.float32)
    out, infos = mix_batch(wavs, np.full(4, 16000), MixConfig(prob=1.0, noise_prob=1.0), np.random.default_rng(2),
                           [noise])
    for i, info in enumerate(infos):
        assert info.kind == "noise" and 1 <= info.length <= 100
        assert np.count_nonzero(out[i] - wavs[i]) <= 100


def test_silent_primary_is_left_alone():
    wavs = np.zeros((2, 4000), dtype=np.float32)
    wavs[1] = 0.5
    out, infos = mix_batch(wavs, np.full(2, 4000), MixConfig(prob=1.0), np.random.default_rng(0))
    assert infos[0].kind == "none" and not out[0].any()


def test_mixing_probability_and_determinism():
    rng = np.random.default_rng(0)
    wavs = rng.standard_normal((200, 4000)).astype(np.float32)
    cfg = MixConfig(prob=0.2)
    out1, infos = mix_batch(wavs, np.full(200, 4000), cfg, np.random.default_rng(5))
    out2, _ = mix_batch(wavs, np.full(200, 4000), cfg, np.random.default_rng(5))
    assert np.array_equal(out1, out2)
    share = np.mean([i.kind != "none" for i in infos])
    assert 0.12 < share < 0.28
    untouched = [k for k, i in enumerate(infos) if i.kind == "none"]
    assert np.array_equal(out1[untouched], wavs[untouched])
    assert mix_batch(wavs, np.full(200, 4000), MixConfig(prob=0.0), rng)[1][0].kind == "none"
