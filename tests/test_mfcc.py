"""MFCC against an independent numpy implementation of Kaldi's algorithm, hand-checked frame counts and
deltas, and the sharded/resumable/mergeable dump CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from conftest import make_data_dir

from wavlm.bin import dump_mfcc
from wavlm.data.audio import AudioError
from wavlm.features.mfcc import MfccConfig, add_deltas, compute_mfcc, mfcc_with_deltas, num_frames
from wavlm.features.shards import ShardError, read_scp


def kaldi_mfcc_reference(wav: np.ndarray, sr: int = 16000, num_ceps: int = 13, num_bins: int = 23,
                         low: float = 20.0, lifter: float = 22.0, preemph: float = 0.97) -> np.ndarray:
    """Kaldi's MFCC written out from its documentation, in float64, one frame at a time."""
    wav = wav.astype(np.float64)
    win, shift, nfft = 400, 160, 512
    n = 1 + (len(wav) - win) // shift
    i = np.arange(win)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * i / (win - 1))) ** 0.85

    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    mlo, mhi = mel(low), mel(sr / 2)
    step = (mhi - mlo) / (num_bins + 1)
    fft_mel = mel(np.arange(nfft // 2) * sr / nfft)  # Kaldi ignores the Nyquist bin
    banks = np.zeros((num_bins, nfft // 2 + 1))
    for b in range(num_bins):
        left, center, right = mlo + b * step, mlo + (b + 1) * step, mlo + (b + 2) * step
        for k, m in enumerate(fft_mel):
            if left < m < right:
                banks[b, k] = (m - left) / (center - left) if m <= center else (right - m) / (right - center)
    j = np.arange(num_bins)
    dct = np.stack([np.full(num_bins, np.sqrt(1 / num_bins)) if q == 0
                    else np.sqrt(2 / num_bins) * np.cos(np.pi / num_bins * (j + 0.5) * q) for q in range(num_ceps)])
    lift = 1 + 0.5 * lifter * np.sin(np.pi * np.arange(num_ceps) / lifter)
    out = []
    for t in range(n):
        f = wav[t * shift : t * shift + win].copy()
        f -= f.mean()  # DC removal
        f[1:] = f[1:] - preemph * f[:-1]
        f[0] -= preemph * f[0]
        f *= povey
        power = np.abs(np.fft.rfft(f, nfft)) ** 2
        logmel = np.log(np.maximum(banks @ power, np.finfo(np.float32).eps))
        out.append((dct @ logmel) * lift)
    return np.array(out)


def test_frame_count_formula():
    cfg = MfccConfig()
    # snip_edges: 1 + (S - 400) // 160 whole 25 ms windows every 10 ms, none below one window
    for s, want in ((0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98), (16160, 99), (48000, 298)):
        assert num_frames(s, cfg) == want
        if s:
            got = compute_mfcc(np.random.default_rng(s).standard_normal(s).astype(np.float32) * 0.1, cfg)
            assert got.shape == (want, 13)


def test_mfcc_matches_independent_reference():
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t * (1 + t))
           + 0.05 * rng.standard_normal(t.size) + 0.01).astype(np.float32)
    ours = compute_mfcc(wav)
    ref = kaldi_mfcc_reference(wav)
    assert ours.shape == ref.shape == (73, 13)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-3)
    # scale 32768 (Kaldi's int16 convention) changes only c0, by 23 * log(32768^2) * sqrt(1/23)
    scaled = compute_mfcc(wav, MfccConfig(scale=32768.0))
    np.testing.assert_allclose(scaled[:, 1:], ours[:, 1:], atol=2e-3)
    np.testing.assert_allclose(scaled[:, 0] - ours[:, 0], np.sqrt(23) * 2 * np.log(32768), rtol=1e-4)


def test_deltas_hand_computed():
    x = np.array([3, 1, 4, 1, 5], dtype=np.float32)[:, None]
    d = add_deltas(x, order=1, window=2)
    # (1 * (x[t+1] - x[t-1]) + 2 * (x[t+2] - x[t-2])) / 10, edges clamped, worked out by hand
    np.testing.assert_allclose(d[:, 1], [0.0, -0.3, 0.4, 0.9, 0.6], atol=1e-6)
    imp = np.zeros((9, 1), dtype=np.float32)
    imp[4] = 1.0
    dd = add_deltas(imp, order=2, window=2)
    np.testing.assert_allclose(dd[:, 0], imp[:, 0])
    np.testing.assert_allclose(dd[:, 1], [0, 0, 0.2, 0.1, 0, -0.1, -0.2, 0, 0], atol=1e-6)
    # Kaldi's 9-tap second-order window (w1 convolved with itself), read off the impulse response
    np.testing.assert_allclose(dd[:, 2], [0.04, 0.04, 0.01, -0.04, -0.1, -0.04, 0.01, 0.04, 0.04], atol=1e-6)


def test_delta_styles_agree_inside_and_match_a_direct_convolution():
    x = np.random.default_rng(1).standard_normal((40, 13)).astype(np.float32)
    k = add_deltas(x, 2, 2, "kaldi")
    ta = add_deltas(x, 2, 2, "torchaudio")
    assert k.shape == ta.shape == (40, 39)
    np.testing.assert_allclose(k[:, :26], ta[:, :26], atol=1e-5)  # statics and deltas are identical
    np.testing.assert_allclose(k[4:-4, 26:], ta[4:-4, 26:], atol=1e-5)  # delta-deltas differ only at edges
    assert np.abs(k[:2, 26:] - ta[:2, 26:]).max() > 1e-3
    w1 = np.arange(-2, 3) / 10.0
    w2 = np.convolve(w1, w1)
    idx = np.clip(np.arange(40)[:, None] + np.arange(-4, 5)[None, :], 0, 39)
    want = np.einsum("tkd,k->td", x[idx].astype(np.float64), w2)  # correlation: w2 is symmetric
    np.testing.assert_allclose(k[:, 26:], want, atol=1e-5)


def test_mfcc_with_deltas_shape_and_determinism():
    wav = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 0.1
    a = mfcc_with_deltas(wav)
    assert a.shape == (98, 39) and a.dtype == np.float32
    np.testing.assert_array_equal(a, mfcc_with_deltas(wav))
    assert MfccConfig().dim == 39 and MfccConfig().frame_rate == 100.0


def mtimes(d) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(d.iterdir())}


def test_dump_shards_resume_merge(tmp_path):
    data = make_data_dir(tmp_path / "data", {"spkA": 3, "spkB": 2}, seconds=0.5)
    out = tmp_path / "mfcc"
    base = ["--data", str(data), "--out", str(out), "--nj", "2"]
    dump_mfcc.main([*base, "--job", "2"])
    assert (out / "feats.2.done").is_file() and not (out / "feats.1.done").exists()
    with pytest.raises(ShardError, match=r"jobs \[1\] of 2 are not done"):
        dump_mfcc.main([*base, "--merge"])
    dump_mfcc.main([*base, "--job", "1"])
    before = mtimes(out)
    dump_mfcc.main([*base, "--job", "1"])  # done: skipped
    assert mtimes(out) == before
    dump_mfcc.main([*base, "--merge"])
    scp = read_scp(out / "feats.scp")
    assert list(scp) == sorted(scp) and len(scp) == 5
    info = json.loads((out / "feats_info.json").read_text())
    assert info["dim"] == 39 and info["frame_rate"] == 100.0
    for utt, spec in scp.items():
        wav, sr = sf.read(data / "wavs" / f"{utt}.wav", dtype="float32")
        np.testing.assert_array_equal(kaldiio.load_mat(spec), mfcc_with_deltas(wav))
    u2nf = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    assert u2nf == {u: str(num_frames(8000)) for u in scp}
    # all-in-one rerun: every job is done, only the merge happens again; the arks are untouched
    arks = {n: t for n, t in mtimes(out).items() if n.endswith((".ark", ".done"))}
    dump_mfcc.main(base)
    assert {n: t for n, t in mtimes(out).items() if n.endswith((".ark", ".done"))} == arks
    # other options: the jobs are redone
    dump_mfcc.main([*base, "--delta_style", "torchaudio"])
    assert (out / "feats.1.ark").stat().st_mtime_ns != arks["feats.1.ark"]
    assert not list(out.glob(".*.tmp"))


def test_dump_short_audio_names_utterance(tmp_path):
    data = make_data_dir(tmp_path / "data", {"spkA": 2}, seconds=0.5)
    sf.write(data / "wavs" / "spkA-0001.wav", np.zeros(300, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"utterance spkA-0001.*300 samples"):
        dump_mfcc.main(["--data", str(data), "--out", str(tmp_path / "o"), "--nj", "1"])
    assert not (tmp_path / "o" / "feats.1.done").exists()


def test_dump_mfcc_help(root):
    p = subprocess.run([sys.executable, "-m", "wavlm.bin.dump_mfcc", "--help"], cwd=root, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 0 and "--nj" in p.stdout and "--merge" in p.stdout
