"""SUPERB SD on the shared trainer: the task learns a trivially separable two-speaker case, our SD checkpoints load
through wavlm.load_frame_classifier (a linear head exports to a Hugging Face WavLMForAudioFrameClassification dir
that transformers loads without missing or unexpected keys and that gives the same logits), diarize's chunking
joins into the frames of the whole recording, score_diar's DER is that of its RTTM recomputed independently."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL

import wavlm
from wavlm.bin import diarize, score_diar, train_superb
from wavlm.bin.diarize import chunk_bounds
from wavlm.data.rttm import Turn, read_rttm, write_rttm
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.frame_classifier import FrameClassifier, export_frame_classifier
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.superb import SuperbFrameClassifier

SR = 16000
DEBUG_CONFIG = Path(__file__).resolve().parents[1] / "egs" / "librimix" / "diar1" / "conf" / "debug" / "sd.yaml"


def tone_data_dir(d, n: int, seed: int) -> None:
    """Two "speakers" that a filterbank separates trivially (a 300 Hz and a 2 kHz tone), each active in its own
    random intervals of a 4 s recording, overlapping sometimes; rttm beside wav.scp."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    wavs, turns = [], []
    t = np.arange(4 * SR) / SR
    for i in range(n):
        reco = f"mix{seed}_{i:02d}"
        x = 0.01 * rng.standard_normal(len(t))
        for spk, freq in (("a", 300.0), ("b", 2000.0)):
            start = float(rng.uniform(0.0, 2.0))
            end = float(min(4.0, start + rng.uniform(0.8, 2.0)))
            seg = (t >= start) & (t < end)
            x[seg] += 0.3 * np.sin(2 * np.pi * freq * t[seg])
            turns.append(Turn(reco, round(start, 3), round(end, 3) - round(start, 3), f"{spk}{seed}"))
        path = d / f"{reco}.wav"
        sf.write(path, x.astype(np.float32), SR)
        wavs.append(f"{reco} {path}\n")
    (d / "wav.scp").write_text("".join(wavs))
    (d / "utt2spk").write_text("".join(f"{w.split()[0]} {w.split()[0]}\n" for w in wavs))
    (d / "spk2utt").write_text("".join(f"{w.split()[0]} {w.split()[0]}\n" for w in wavs))
    (d / "utt2dur").write_text("".join(f"{w.split()[0]} 4.0\n" for w in wavs))
    write_rttm(d / "rttm", turns)


def train(tmp_path, upstream: str, exp: str, *overrides: str) -> None:
    args = ["--config", str(DEBUG_CONFIG), "--exp_dir", str(tmp_path / exp), "--device", "cpu",
            f"upstream.path={upstream}", f"data.train={tmp_path / 'train'}", f"data.valid={tmp_path / 'dev'}",
            "data.chunk_frames=150", "trainer.log_interval=10", *overrides]
    assert train_superb.main(args) == 0


@pytest.fixture(scope="module")
def sd_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    tone_data_dir(root / "train", 16, 0)
    tone_data_dir(root / "dev", 4, 1)
    return root


def test_sd_learns_a_separable_case_and_scores(sd_data, tmp_path) -> None:
    for name in ("train", "dev"):
        (tmp_path / name).symlink_to(sd_data / name)
    train(tmp_path, "fbank", "fbank", "head.rnn_layers=1", "head.rnn_dim=16", "trainer.max_updates=150",
          "trainer.valid_interval_updates=50", "trainer.save_interval_updates=50", "trainer.optim.lr=0.01",
          "upstream.normalize=true")
    best = torch.load(tmp_path / "fbank" / "checkpoint_best.pt", weights_only=False)
    assert best["validation"]["metric"] == "der" and best["validation"]["der"] < 25.0  # all silent: 100 %
    model = wavlm.load_frame_classifier(str(tmp_path / "fbank" / "checkpoint_best.pt"))
    assert isinstance(model, SuperbFrameClassifier) and model.labels == ["spk0", "spk1"]

    out = tmp_path / "dev_out"
    assert diarize.main(["--model", str(tmp_path / "fbank" / "checkpoint_best.pt"), "--data", str(tmp_path / "dev"),
                         "--out", str(out), "--device", "cpu", "--chunk_seconds", "1.5"]) == 0
    info = json.loads((out / "info.json").read_text())
    assert info["frame_shift"] == 0.01 and info["speakers"] == 2
    assert read_rttm(out / "hyp.rttm")  # something was detected
    scoring = tmp_path / "scoring"
    assert score_diar.main(["--sets", str(out), "--refs", str(tmp_path / "dev" / "rttm"), "--out", str(scoring),
                            "--tag", "fbank"]) == 0
    r = json.loads((scoring / "dev_out" / "result.json").read_text())
    assert (r["task"], r["metric"], r["tag"]) == ("sd", "der", "fbank") and r["value"] < 25.0
    assert r["median"] in (1, 11) and r["threshold"] in (0.3, 0.4, 0.5, 0.6, 0.7)
    # the DER is that of the written RTTM, recomputed with pyannote.metrics directly
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = read_rttm(tmp_path / "dev" / "rttm"), read_rttm(scoring / "dev_out" / "hyp.rttm")
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)

    def ann(turns):
        a = Annotation()
        for t in turns:
            a[Segment(t.start, t.end)] = t.speaker
        return a

    for reco in ref:
        metric(ann(ref[reco]), ann(hyp.get(reco, [])), uem=None)
    assert 100 * abs(metric) == pytest.approx(r["der"], abs=0.05)
    assert (scoring / "dev_out" / f"activity_{sorted(ref)[0]}.png").read_bytes()[:4] == b"\x89PNG"


def test_linear_sd_checkpoint_exports_to_transformers(sd_data, tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    for name in ("train", "dev"):
        (tmp_path / name).symlink_to(sd_data / name)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    train(tmp_path, str(tmp_path / "tiny.pt"), "lin", "head.rnn_layers=0", "trainer.max_updates=2",
          "trainer.valid_interval_updates=2", "trainer.save_interval_updates=2")
    ckpt = tmp_path / "lin" / "checkpoint_best.pt"
    model = wavlm.load_frame_classifier(str(ckpt))
    assert isinstance(model, FrameClassifier)  # a linear head on WavLM is Hugging Face's model exactly
    assert float(model.featurizer.weights.abs().sum()) > 0  # the trained weights came along
    export_frame_classifier(model, tmp_path / "hf")
    hf, info = transformers.WavLMForAudioFrameClassification.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    wav = torch.randn(2, 24000)
    with torch.no_grad():
        ours = model(wav).logits
        theirs = hf.eval()(wav).logits
    assert torch.allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("n", [300, 400, 5000, 32000, 32079, 32080, 64000, 96123, 200_000])
def test_chunks_join_into_the_recordings_frames(n) -> None:
    def frames(samples: int) -> int:  # WavLM's CNN: 400-sample receptive field, 320 stride
        return max(0, (samples - 400) // 320 + 1)

    chunks = chunk_bounds(n, 32000, 320, frames)
    assert sum(k for _, _, k in chunks) == frames(n)
    first = 0
    for start, end, keep in chunks:
        assert start == first * 320  # each chunk starts at the frame after the previous chunk's last
        assert frames(end - start) >= keep  # the chunk holds the samples its frames need
        first += keep
