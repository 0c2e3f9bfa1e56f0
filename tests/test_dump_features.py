"""`python -m wavlm.bin.dump_features`: real wav files in a Kaldi data dir, read back with kaldiio."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from contextlib import contextmanager

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL

from wavlm.bin import dump_features
from wavlm.data.audio import AudioError
from wavlm.data.datadir import DataDir
from wavlm.features.dump import DumpOptions, FeatureDumper, extract_chunked
from wavlm.features.shards import ark_scp_writer
from wavlm.models.checkpoint import load_model, save_checkpoint
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


# ---- I/O overlapped with compute: reader process, writer thread -------------------------------------------


def segmented_data(root):
    """Two recordings cut into segments (a recording is read once for its segments), plus one plain file."""
    data = make_data(
        root, {"r1": (speechlike(40000, 1), 16000), "r2": (speechlike(30000, 2), 16000)}
    )
    segs = [("a-1", "r1", 0.0, 0.8), ("a-2", "r1", 0.8, 1.9), ("a-3", "r1", 1.9, 2.5),
            ("b-1", "r2", 0.1, 0.7), ("b-2", "r2", 0.7, 1.85)]
    (data / "segments").write_text("".join(f"{u} {r} {a} {b}\n" for u, r, a, b in segs))
    (data / "utt2spk").write_text("".join(f"{u} {u[0]}\n" for u, *_ in segs))
    return data


def sequential_reference(model_path, data, out, layer: str, batch_seconds: float) -> None:
    """What dump_features did before the reader process and the writer thread: everything in one thread."""
    d = FeatureDumper(load_model(model_path), DumpOptions(layer=layer, batch_seconds=batch_seconds), "cpu")
    dd = DataDir(data)
    items = ((u, d.prepare(w, sr, dd.describe(u))) for u, w, sr in dd.iter_audio(dd.utt_ids()))
    out.mkdir(parents=True)
    with ark_scp_writer(out / "feats.1.ark", out / "feats.1.scp") as put:
        for utt, feats in d.run(items):
            for key, f in zip(d.keys(utt), feats, strict=True):
                put(key, f)


def test_io_worker_and_inline_give_the_sequential_bytes(tmp_path, model_path) -> None:
    path, _ = model_path
    data = segmented_data(tmp_path / "data")
    ref = tmp_path / "ref"
    sequential_reference(path, data, ref, "all", 1.5)
    outs = {}
    for workers in ("1", "0"):
        out = outs[workers] = tmp_path / f"w{workers}"
        args = ["--model", str(path), "--data", str(data), "--out", str(out), "--layer", "all",
                "--batch_seconds", "1.5", "--io_workers", workers]
        assert dump_features.main(args) == 0
    assert multiprocessing.active_children() == []  # the reader process is gone
    assert not [t for t in threading.enumerate() if t.name == "ark-writer"]
    ref_ark = (ref / "feats.1.ark").read_bytes()
    ref_scp = (ref / "feats.1.scp").read_text().replace(str(ref), "OUT")
    for out in outs.values():
        assert (out / "feats.1.ark").read_bytes() == ref_ark
        assert (out / "feats.1.scp").read_text().replace(str(out), "OUT") == ref_scp
    assert (outs["1"] / "utt2num_frames").read_text() == (outs["0"] / "utt2num_frames").read_text()
    assert len(ref_scp.splitlines()) == 5 * 3  # 5 utterances x hidden states 0..2


def test_prepared_audio_groups_and_pickles_without_model(tmp_path, model_path) -> None:
    data = segmented_data(tmp_path / "data")
    utts = DataDir(data).utt_ids()
    ds = dump_features.PreparedAudio(str(data), utts, DumpOptions(), 400, group_samples=20000)
    assert len(pickle.dumps(ds)) < 2000  # path, ids and options: no model, no audio
    groups = list(ds)
    assert [[u for u, _ in g] for g in groups] == [["a-1"], ["a-2"], ["a-3", "b-1"], ["b-2"]]
    assert all(sum(len(w) for _, w in g) <= 20000 or len(g) == 1 for g in groups)
    inline = list(dump_features.prepared_audio(ds, 0))
    worker = list(dump_features.prepared_audio(ds, 1))
    assert [u for u, _ in inline] == [u for u, _ in worker] == utts
    for (_, a), (_, b) in zip(inline, worker, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("workers", ["1", "0"])
def test_unreadable_wav_error_through_reader(tmp_path, model_path, capfd, workers) -> None:
    path, _ = model_path
    data = make_data(tmp_path / "data", {f"ok-{i}": (speechlike(8000, i), 16000) for i in range(3)})
    (data / "wavs" / "ok-1.wav").write_bytes(b"RIFF this is not a wav file at all")
    out = tmp_path / "o"
    rc = dump_features.main(["--model", str(path), "--data", str(data), "--out", str(out), "--io_workers", workers])
    assert rc == 1
    err = capfd.readouterr().err
    assert f"{data}/wav.scp:2 (utterance ok-1): cannot read audio" in err
    assert "Traceback" not in err and "DataLoader" not in err
    assert not list(out.glob("*feats.1.*"))
    assert multiprocessing.active_children() == []
    # the same exception type and message both ways
    ds = dump_features.PreparedAudio(str(data), ["ok-0", "ok-1", "ok-2"], DumpOptions(), 400, 16000)
    messages = []
    for w in (0, 1):
        with pytest.raises(AudioError) as e:
            list(dump_features.prepared_audio(ds, w))
        messages.append(str(e.value))
    assert messages[0] == messages[1] and "ok-1" in messages[0]


def test_writer_thread_failure_stops_the_job(tmp_path, model_path, monkeypatch) -> None:
    path, _ = model_path
    data = make_data(tmp_path / "data", {f"s-{i}": (speechlike(6000 + 500 * i, i), 16000) for i in range(6)})
    real = dump_features.ark_scp_writer
    calls = []

    @contextmanager
    def failing_writer(ark, scp):
        with real(ark, scp) as put:

            def put_fails(key, mat):
                calls.append(threading.current_thread().name)
                if len(calls) == 2:
                    raise OSError(f"{ark}: no space left on device (test)")
                put(key, mat)

            yield put_fails

    monkeypatch.setattr(dump_features, "ark_scp_writer", failing_writer)
    out = tmp_path / "o"
    with pytest.raises(OSError, match="no space left on device"):
        dump_features.main(["--model", str(path), "--data", str(data), "--out", str(out)])
    assert set(calls) == {"ark-writer"}
    assert sorted(p.name for p in out.iterdir()) == []  # no feats.1.ark/scp/utt2num_frames/done, no temp files
    assert not [t for t in threading.enumerate() if t.name == "ark-writer"]
    assert multiprocessing.active_children() == []


def test_writer_thread_error_reaches_the_next_write() -> None:
    written = []

    def put(key, mat):
        if key == "bad":
            raise RuntimeError("cannot write bad")
        written.append(key)

    m = np.zeros((2, 3), np.float32)
    with pytest.raises(RuntimeError, match="cannot write bad"):
        with dump_features.ArkWriterThread(put, maxsize=1) as w:
            w.write("a", [("a", m)])
            w.write("bad", [("bad", m)])
            for _ in range(500):  # wait until the thread has failed, then writing raises at once
                if w.error is not None:
                    break
                time.sleep(0.01)
            w.write("c", [("c", m)])
            pytest.fail("write after a writer error did not raise")
    assert written == ["a"] and w.lines == ["a 2\n"]
    with dump_features.ArkWriterThread(lambda k, x: written.append(k)) as w:
        w.write("x", [("x", m)])
    assert not w.thread.is_alive() and w.lines == ["x 2\n"]
    with pytest.raises(ValueError, match="compute failed"):  # an error of the caller stops the thread
        with dump_features.ArkWriterThread(lambda k, x: time.sleep(0.05)) as w:
            for i in range(20):
                w.write(f"u{i}", [(f"u{i}", m)])
            raise ValueError("compute failed")
    assert not w.thread.is_alive() and len(w.lines) < 20
