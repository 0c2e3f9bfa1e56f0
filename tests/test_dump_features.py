"""`python -m wavlm.bin.dump_features`: real wav files in a Kaldi data dir, read back with kaldiio."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL

from wavlm.bin import dump_features
from wavlm.features.dump import extract_chunked
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig


def speechlike(n: int, seed: int) -> np.ndarray:
    """Amplitude-modulated harmonics plus noise: structured enough that positions matter."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 6))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6))
    return (0.1 * x * env + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    model = WavLM(WavLMConfig(**SMALL_MODEL)).eval()
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, model)
    return path, model


def make_data(root, utts: dict[str, tuple[np.ndarray, int]], subtype: str = "PCM_16"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "wavs").mkdir(exist_ok=True)
    lines = []
    for utt in sorted(utts):
        wav, sr = utts[utt]
        p = root / "wavs" / f"{utt}.wav"
        sf.write(p, wav, sr, subtype=subtype)
        lines.append(f"{utt} {p}\n")
    (root / "wav.scp").write_text("".join(lines))
    (root / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
    return root


def read_back(scp) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(scp)).items()}


def reference(model: WavLM, path, layer: int) -> np.ndarray:
    wav, _ = sf.read(path, dtype="float32")
    with torch.no_grad():
        return model.extract_features(torch.from_numpy(wav)[None]).hidden_states[layer][0].numpy()


def test_dump_equals_extract_features_and_resumes(tmp_path, model_path) -> None:
    path, model = model_path
    lengths = [16000, 16000, 12345, 20000, 7000]
    data = make_data(
        tmp_path / "data", {f"spk{i % 2}-u{i}": (speechlike(n, i), 16000) for i, n in enumerate(lengths)}
    )
    out = tmp_path / "dump"
    args = [
        "--model",
        str(path),
        "--layer",
        "1",
        "--data",
        str(data),
        "--out",
        str(out),
        "--nj",
        "2",
        "--batch_seconds",
        "3",
    ]
    assert dump_features.main(args) == 0
    feats = read_back(out / "feats.scp")
    assert sorted(feats) == sorted(f"spk{i % 2}-u{i}" for i in range(5))
    for utt, mat in feats.items():
        ref = reference(model, data / "wavs" / f"{utt}.wav", 1)
        assert mat.shape == ref.shape and mat.dtype == np.float32
        np.testing.assert_allclose(mat, ref, atol=1e-5)
    n_frames = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    assert {u: int(n) for u, n in n_frames.items()} == {u: m.shape[0] for u, m in feats.items()}
    # rerun: both jobs are done, nothing is rewritten
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("feats.*.ark")}
    assert dump_features.main(args) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("feats.*.ark")} == stamps
    # one job at a time as $cmd runs them, then --merge
    out2 = tmp_path / "dump2"
    args2 = [a if a != str(out) else str(out2) for a in args]
    assert dump_features.main(args2 + ["--merge"]) == 1  # nothing done yet
    for job in ("1", "2"):
        assert dump_features.main(args2 + ["--job", job]) == 0
    assert not (out2 / "feats.scp").exists()
    assert dump_features.main(args2 + ["--merge"]) == 0
    feats2 = read_back(out2 / "feats.scp")
    for utt in feats:
        np.testing.assert_array_equal(feats2[utt], feats[utt])


def test_layer_all_and_last(tmp_path, model_path) -> None:
    path, model = model_path
    data = make_data(
        tmp_path / "data", {"a-1": (speechlike(9000, 1), 16000), "a-2": (speechlike(11000, 2), 16000)}
    )
    out = tmp_path / "all"
    assert (
        dump_features.main(["--model", str(path), "--layer", "all", "--data", str(data), "--out", str(out)])
        == 0
    )
    feats = read_back(out / "feats.scp")
    assert sorted(feats) == sorted(f"{u}@{i}" for u in ("a-1", "a-2") for i in range(3))
    for layer in range(3):
        per_layer = read_back(out / f"layer{layer}" / "feats.scp")
        assert sorted(per_layer) == ["a-1", "a-2"]
        np.testing.assert_allclose(
            per_layer["a-2"], reference(model, data / "wavs" / "a-2.wav", layer), atol=1e-5
        )
    out = tmp_path / "last"
    assert (
        dump_features.main(["--model", str(path), "--layer", "last", "--data", str(data), "--out", str(out)])
        == 0
    )
    np.testing.assert_allclose(
        read_back(out / "feats.scp")["a-1"], reference(model, data / "wavs" / "a-1.wav", 2), atol=1e-5
    )


def test_chunked_long_audio_close_to_full_context(tmp_path, model_path) -> None:
    path, model = model_path
    wav = speechlike(16000 * 25, 7)
    with torch.no_grad():
        full = model.extract_features(torch.from_numpy(wav)[None]).hidden_states
        chunked = extract_chunked(model, torch.from_numpy(wav), [0, 1, 2], chunk_seconds=8, overlap_seconds=2)
    for layer, c in enumerate(chunked):
        f = full[layer][0]
        assert c.shape == f.shape
        rel = float((c - f).norm() / f.norm())
        assert rel < 0.05, f"layer {layer}: relative difference {rel:.3g}"
    # the CLI takes the same path for long recordings
    data = make_data(tmp_path / "data", {"long-1": (wav, 16000)})
    out = tmp_path / "dump"
    assert (
        dump_features.main(
            [
                "--model",
                str(path),
                "--layer",
                "2",
                "--data",
                str(data),
                "--out",
                str(out),
                "--chunk_seconds",
                "8",
                "--chunk_overlap_seconds",
                "2",
            ]
        )
        == 0
    )
    wav16 = sf.read(data / "wavs" / "long-1.wav", dtype="float32")[0]
    with torch.no_grad():
        ref = extract_chunked(model, torch.from_numpy(wav16), [2], 8, 2)[0].numpy()
    np.testing.assert_allclose(read_back(out / "feats.scp")["long-1"], ref, atol=1e-5)


@pytest.mark.parametrize(
    "case, audio, extra, message",
    [
        ("rate", (np.zeros(8000, np.float32) + 0.1, 8000), [], "--resample"),
        ("stereo", (np.stack([speechlike(8000, 1), speechlike(8000, 2)], 1), 16000), [], "2 channels"),
        ("nan", (np.where(np.arange(8000) == 5, np.nan, 0.1).astype(np.float32), 16000), [], "NaN"),
        ("short", (speechlike(300, 1), 16000), [], "fewer than the 400"),
        ("empty", (np.zeros(0, np.float32), 16000), [], "empty"),
    ],
)
def test_bad_input_errors(tmp_path, model_path, capfd, case, audio, extra, message) -> None:
    path, _ = model_path
    data = make_data(
        tmp_path / "data", {"ok-1": (speechlike(8000, 0), 16000), f"bad-{case}": audio}, subtype="FLOAT"
    )
    rc = dump_features.main(["--model", str(path), "--data", str(data), "--out", str(tmp_path / "o"), *extra])
    assert rc == 1
    text = capfd.readouterr().err
    assert "ERROR" in text
    assert message in text and f"bad-{case}" in text and "wav.scp" in text


def test_resample_and_channel_options(tmp_path, model_path) -> None:
    path, model = model_path
    stereo = np.stack([speechlike(16000, 1), speechlike(16000, 2)], 1)
    data = make_data(
        tmp_path / "data", {"a-8k": (speechlike(8000, 3), 8000), "b-st": (stereo, 16000)}, "FLOAT"
    )
    out = tmp_path / "o"
    assert (
        dump_features.main(
            [
                "--model",
                str(path),
                "--data",
                str(data),
                "--out",
                str(out),
                "--resample",
                "--channel",
                "1",
                "--layer",
                "0",
            ]
        )
        == 0
    )
    feats = read_back(out / "feats.scp")
    assert feats["a-8k"].shape[0] == 49  # 1 s after resampling to 16 kHz
    with torch.no_grad():
        ref = model.extract_features(torch.from_numpy(stereo[:, 1].copy())[None]).hidden_states[0][0].numpy()
    np.testing.assert_allclose(feats["b-st"], ref, atol=1e-5)


def test_help(capsys) -> None:
    with pytest.raises(SystemExit):
        dump_features.main(["--help"])
    assert "--chunk_seconds" in capsys.readouterr().out


def test_first_norm_stats_blockwise_equal_full(model_path) -> None:
    """The global GroupNorm statistics used for windows equal those of the full-length pass."""
    _, model = model_path
    wav = torch.from_numpy(speechlike(50000, 5))[None]
    with torch.no_grad():
        full = model.extract_features(wav).hidden_states
        stats = model.feature_extractor.first_norm_stats(wav[0], block_samples=7777)
        given = model.extract_features(wav, norm_stats=stats).hidden_states
    for a, b in zip(full, given, strict=True):
        assert (a - b).abs().max() < 1e-4


def test_large_style_padded_batches_equal_single(tmp_path) -> None:
    """Layer-norm CNN, pre-LN, normalised input: padded batches give each utterance's own features."""
    torch.manual_seed(1)
    cfg = WavLMConfig(
        **SMALL_MODEL, extractor_mode="layer_norm", layer_norm_first=True, conv_bias=True, normalize=True
    )
    model = WavLM(cfg).eval()
    save_checkpoint(tmp_path / "large.pt", model)
    lengths = [16000, 15000, 9000, 12000]
    data = make_data(tmp_path / "data", {f"s-{i}": (speechlike(n, i), 16000) for i, n in enumerate(lengths)})
    out = tmp_path / "o"
    args = ["--model", str(tmp_path / "large.pt"), "--data", str(data), "--out", str(out), "--layer", "last"]
    assert dump_features.main(args + ["--batch_seconds", "10"]) == 0
    feats = read_back(out / "feats.scp")
    for i in range(len(lengths)):
        ref = reference(model, data / "wavs" / f"s-{i}.wav", cfg.encoder_layers)
        np.testing.assert_allclose(feats[f"s-{i}"], ref, atol=1e-4)
