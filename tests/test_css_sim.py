"""CSS training-mixture simulation (wavlm.data.css_sim, wavlm.bin.simulate_css) on a tiny data dir."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import make_data_dir

from wavlm.bin.simulate_css import main as simulate_css
from wavlm.data.css_sim import (
    CssSimConfig,
    CssSimError,
    NoiseSource,
    diffuse_mix,
    layout,
    load_speakers,
    mic_positions,
    overlap_ratio,
    simulate_segment,
)
from wavlm.data.datadir import validate
from wavlm.features.shards import ShardError

SR = 16000
FAST = dict(segment_seconds=2.5, rt60=(0.15, 0.3), room_max=(6.0, 5.0, 3.0))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("css") / "train"
    make_data_dir(d, {"spkA": 2, "spkB": 2, "spkC": 2}, seconds=1.2)
    return d


def _cfg(**kw: object) -> CssSimConfig:
    cfg = CssSimConfig(**{**FAST, **kw})
    cfg.check()
    return cfg


def _db(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(np.sum(np.asarray(a, np.float64) ** 2) / np.sum(np.asarray(b, np.float64) ** 2))


def _read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float64")[0]


def _run(data: Path, out: Path, seed: int, *extra: str) -> dict:
    simulate_css(["--data", str(data), "--out", str(out), "--num_segments", "3", "--seed", str(seed),
                  "segment_seconds=2.5", "rt60=[0.15, 0.3]", "room_max=[6.0, 5.0, 3.0]", *extra])
    return json.loads((out / "segments_info.json").read_text())


def test_array_is_the_libricss_geometry() -> None:
    from wavlm.synth.libricss import mic_positions as libricss_mics

    centre = np.array([2.0, 3.0, 1.0])
    m = mic_positions(centre)
    np.testing.assert_allclose(m, libricss_mics(centre))
    np.testing.assert_allclose(np.linalg.norm(m[:, 1:] - centre[:, None], axis=0), 0.0425)
    assert np.allclose(m[:, 0], centre)


def test_cli_deterministic_split_independent_and_seeded(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="not done"):
        _run(data, tmp_path / "a", 3, "--nj", "2", "--merge")
    for job in ("1", "2"):
        simulate_css(["--data", str(data), "--out", str(tmp_path / "a"), "--num_segments", "3", "--seed", "3",
                      "segment_seconds=2.5", "rt60=[0.15, 0.3]", "room_max=[6.0, 5.0, 3.0]", "--nj", "2",
                      "--job", job])
    assert not (tmp_path / "a" / "wav.scp").exists()
    a = _run(data, tmp_path / "a", 3, "--nj", "2", "--merge")
    b = _run(data, tmp_path / "b", 3)
    c = _run(data, tmp_path / "c", 4)
    assert a == b and a != c
    for sub in ("wav", "spk1", "spk2", "noise"):
        for seg in a:
            fa, fb = (tmp_path / x / sub / f"{seg}.wav" for x in "ab")
            assert fa.read_bytes() == fb.read_bytes(), f"{sub}/{seg} differs between --nj 2 and --nj 1"
    assert (tmp_path / "a" / "wav" / "css-0000000.wav").read_bytes() != \
        (tmp_path / "c" / "wav" / "css-0000000.wav").read_bytes()
    out = tmp_path / "a"
    assert validate(out, check_audio=True) == []
    for name in ("wav.scp", "spk1.scp", "spk2.scp", "noise.scp", "utt2spk"):
        assert [line.split()[0] for line in (out / name).read_text().splitlines()] == sorted(a)
    for seg, info in a.items():
        mix = _read(out / "wav" / f"{seg}.wav")
        assert mix.shape == (int(2.5 * SR), 7)
        spk1, spk2, noise = (_read(out / t / f"{seg}.wav") for t in ("spk1", "spk2", "noise"))
        assert spk1.shape == spk2.shape == noise.shape == (int(2.5 * SR),)
        assert (np.abs(spk2).max() == 0) == (info["kind"] == "single")
        # the files (16-bit PCM) keep the drawn SNR at the reference mic
        assert abs(_db(mix[:, 0] - noise, noise) - info["snr_db"]) < 0.1
        assert info["spk1"] != info["spk2"] and 0.15 <= info["rt60"] <= 0.3


def test_mixture_is_early_images_plus_noise_plus_late_reverb(data: Path) -> None:
    cfg = _cfg(overlap_prob=1.0, single_prob=0.0, snr_db=(0.0, 10.0))
    speakers, noises = load_speakers(data), NoiseSource(cfg)
    for k in range(3):
        s = simulate_segment(k, 0, speakers, noises, cfg)
        ref = s.mixture[0].astype(np.float64)
        assert abs(_db(ref - s.noise, s.noise) - s.info["snr_db"]) < 0.1
        assert 0.0 <= s.info["snr_db"] <= 10.0
        late = ref - s.spk1 - s.spk2 - s.noise
        first = min(start for start, _ in s.info["placement"])
        early_end = first + int(0.05 * SR) + 40  # direct path (>= 40 samples of filter delay) + 50 ms
        assert np.max(np.abs(late[:early_end])) < 1e-5  # nothing but early sound at the start
        speech = s.spk1 + s.spk2
        assert -40 < _db(late, speech) < 0  # late reverberation exists and is weaker than the early part


def test_overlap_ratio_within_range_and_matches_images(data: Path) -> None:
    lo, hi = 0.2, 0.4
    cfg = _cfg(overlap_prob=1.0, single_prob=0.0, overlap_ratio=(lo, hi), channels=1, early_ms=0.0)
    speakers, noises = load_speakers(data), NoiseSource(cfg)
    for k in range(4):
        s = simulate_segment(k, 1, speakers, noises, cfg)
        info = s.info
        assert info["kind"] == "overlap"
        assert lo - 1e-3 <= info["overlap_ratio"] <= hi + 1e-3
        assert abs(info["overlap_ratio"] - info["target_overlap_ratio"]) < 1e-3
        # activity of the target images (direct path only) gives the same placement, up to the
        # propagation delay and the fractional-delay filter (< 40 ms)
        acts = []
        for img, (start, length) in zip((s.spk1, s.spk2), info["placement"], strict=True):
            on = np.flatnonzero(np.abs(img) > 1e-4 * np.abs(img).max())
            assert start <= on[0] < start + int(0.04 * SR)
            assert start + length <= on[-1] + 1 < start + length + int(0.04 * SR)
            acts.append((int(on[0]), int(on[-1]) + 1 - int(on[0])))
        assert abs(overlap_ratio(acts) - info["overlap_ratio"]) < 0.03


@pytest.mark.parametrize("kind", ["overlap", "gap", "single"])
def test_layout_fits_and_hits_the_ratio(kind: str) -> None:
    cfg = _cfg(overlap_ratio=(0.05, 1.0))
    rng = np.random.default_rng(0)
    n = 40000
    for _ in range(300):
        l1, l2 = (int(x) for x in rng.integers(200, 3 * n, 2))
        place, target = layout(kind, l1, l2, n, cfg, rng)
        assert len(place) == (1 if kind == "single" else 2)
        assert all(s >= 0 and d > 0 and s + d <= n for s, d in place)
        if kind == "overlap":
            assert abs(overlap_ratio(place) - target) < 2e-3
        else:
            assert overlap_ratio(place) == 0.0


def test_noise_data_dir(data: Path, tmp_path: Path) -> None:
    noise_dir = make_data_dir(tmp_path / "noise", {"noise1": 2}, seconds=0.7, text=False)
    cfg = _cfg(noise_data=str(noise_dir), channels=7)
    s = simulate_segment(0, 0, load_speakers(data), NoiseSource(cfg), cfg)
    assert len(s.info["noise_utts"]) == 7 and all(u.startswith("noise1-") for u in s.info["noise_utts"])
    assert abs(_db(s.mixture[0].astype(np.float64) - s.noise, s.noise) - s.info["snr_db"]) < 0.1


def test_channels_7_vs_1(data: Path, tmp_path: Path) -> None:
    speakers = load_speakers(data)
    c7, c1 = _cfg(channels=7), _cfg(channels=1)
    s7 = simulate_segment(5, 2, speakers, NoiseSource(c7), c7)
    s1 = simulate_segment(5, 2, speakers, NoiseSource(c1), c1)
    assert s7.mixture.shape == (7, int(2.5 * SR)) and s1.mixture.shape == (1, int(2.5 * SR))
    # same room and sources: the centre-mic targets agree up to the mixture's peak scale
    np.testing.assert_allclose(s7.spk1 / s7.info["scale"], s1.spk1 / s1.info["scale"], atol=1e-5)
    _run(data, tmp_path / "one", 0, "--channels", "1")
    assert sf.info(str(tmp_path / "one" / "wav" / "css-0000000.wav")).channels == 1


def test_noise_is_diffuse() -> None:
    from scipy.signal import coherence

    mics = mic_positions(np.zeros(3))
    x = diffuse_mix(np.random.default_rng(0).standard_normal((7, 10 * SR)), mics, SR)
    for i, j in ((0, 1), (1, 4)):  # 4.25 cm and 8.5 cm apart
        f, coh = coherence(x[i], x[j], fs=SR, nperseg=512)
        d = np.linalg.norm(mics[:, i] - mics[:, j])
        want = np.sinc(2 * f * d / 343.0) ** 2
        band = (f > 100) & (f < 7000)
        assert np.max(np.abs(coh[band] - want[band])) < 0.1


def test_fewer_than_two_speakers_is_a_clear_error(tmp_path: Path) -> None:
    d = make_data_dir(tmp_path / "one_spk", {"spkA": 3}, seconds=1.0)
    with pytest.raises(CssSimError, match=f"{d / 'utt2spk'}.*at least 2"):
        load_speakers(d)
    with pytest.raises(SystemExit, match="utt2spk.*at least 2"):
        simulate_css(["--data", str(d), "--out", str(tmp_path / "out"), "--num_segments", "1"])
    assert not (tmp_path / "out").exists()


def test_bad_config_is_rejected(data: Path, tmp_path: Path) -> None:
    with pytest.raises(CssSimError, match="channels"):
        _cfg(channels=2)
    with pytest.raises(CssSimError, match="overlap_prob"):
        _cfg(overlap_prob=0.8, single_prob=0.5)
    with pytest.raises(SystemExit, match="unknown key"):
        simulate_css(["--data", str(data), "--out", str(tmp_path / "o"), "--num_segments", "1", "snr=[1, 2]"])
