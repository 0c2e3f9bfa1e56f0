"""Continuous speech separation task: a training step on simulated mixtures for both front ends, the
separator checkpoint, validation SI-SDR improvement, and continuous separation of a session."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL, make_data_dir, run

from wavlm.config import from_dict
from wavlm.data.datadir import compute_utt2dur
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.css import CssConfig, CssTask, load_separator
from wavlm.train.trainer import Trainer


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, env):
    tmp = tmp_path_factory.mktemp("css")
    src = make_data_dir(tmp / "src", {"spkA": 2, "spkB": 2, "spkC": 2}, seconds=1.5)
    compute_utt2dur(src)
    for name, n, seed in (("train", 6, 1), ("dev", 2, 2)):
        run(["python", "-m", "wavlm.bin.simulate_css", "--data", str(src), "--out", str(tmp / name),
             "--num_segments", str(n), "--seed", str(seed), "segment_seconds=2.0", "channels=1"], env)
    return tmp


def _cfg(sim, frontend, init=""):
    return from_dict(CssConfig, {
        "model": {"frontend": frontend, "init": init, "wavlm_proj": 16,
                  "conformer": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1}},
        "data": {"train": str(sim / "train"), "valid": str(sim / "dev"), "batch_size": 2, "crop_seconds": 1.5},
        "trainer": {"max_updates": 2, "save_interval_updates": 2, "valid_interval_updates": 2, "num_workers": 0}})


@pytest.mark.parametrize("frontend", ["stft", "wavlm"])
def test_train_validate_and_reload(simulated, tmp_path, frontend):
    init = ""
    if frontend == "wavlm":
        torch.manual_seed(0)
        save_checkpoint(tmp_path / "wavlm.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
        init = str(tmp_path / "wavlm.pt")
    cfg = _cfg(simulated, frontend, init)
    task = CssTask(cfg)
    model = task.build_model()
    trainer = Trainer(cfg.trainer, task, model, tmp_path / "exp")
    trainer.train()
    metrics = trainer.validate()
    assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["si_sdri"])  # learning: tests/test_learning.py
    if frontend == "wavlm":  # frozen encoder: untouched by training
        ref = torch.load(tmp_path / "wavlm.pt", weights_only=True)["model"]
        assert all(torch.equal(v, model.wavlm.state_dict()[k]) for k, v in ref.items())
    sep = load_separator(str(tmp_path / "exp" / "checkpoint_last.pt"))
    wav = torch.randn(1, 12000) * 0.1
    with torch.no_grad():
        out = sep(wav)
        assert out.shape == (1, 3, 12000)
        assert torch.allclose(out, model.eval()(wav), atol=1e-5)


def test_masks_of_one_reconstruct_the_mixture(simulated):
    task = CssTask(_cfg(simulated, "stft"))
    model = task.build_model().eval()
    torch.nn.init.zeros_(model.mask.weight)
    torch.nn.init.constant_(model.mask.bias, 50.0)  # sigmoid -> 1: every output is the mixture
    wav = torch.randn(2, 9000)
    with torch.no_grad():
        out = model(wav)
    assert torch.allclose(out[:, 0], wav, atol=1e-4) and torch.allclose(out[:, 2], wav, atol=1e-4)


def test_css_separate_writes_streams_and_names_short_sessions(simulated, tmp_path, env):
    cfg = _cfg(simulated, "stft")
    task = CssTask(cfg)
    Trainer(cfg.trainer, task, task.build_model(), tmp_path / "exp").train()
    d = tmp_path / "sessions"
    d.mkdir()
    sf.write(d / "s1.wav", np.random.default_rng(0).standard_normal((16000, 7)).astype(np.float32) * 0.1, 16000)
    (d / "wav.scp").write_text(f"OV10_session0 {d / 's1.wav'}\n")
    (d / "segments").write_text("a-OV10_session0-u1 OV10_session0 0.10 0.60\n")
    (d / "text").write_text("a-OV10_session0-u1 HELLO\n")
    (d / "utt2spk").write_text("a-OV10_session0-u1 a\n")
    (d / "spk2utt").write_text("a a-OV10_session0-u1\n")
    p = run(["python", "-m", "wavlm.bin.css_separate", "--model", str(tmp_path / "exp" / "checkpoint_last.pt"),
             "--data", str(d), "--out", str(tmp_path / "sep"), "--history", "0.5", "--current", "1.0",
             "--future", "0.5"], env)
    assert "shorter than one window" in p.stderr and "wav.scp:1" in p.stderr
    for k in (0, 1):
        x, sr = sf.read(tmp_path / "sep" / "wav" / f"OV10_session0-s{k}.wav")
        assert sr == 16000 and x.shape == (16000,)
        assert (tmp_path / "sep" / f"stream{k}" / "segments").read_text().startswith("a-OV10_session0-u1 ")


def test_mvdr_is_distortionless_for_identical_channels(simulated):
    # every channel the same signal x, speaker mask 1: Phi_s = x x^H on the all-ones steering vector,
    # Phi_n only the diagonal loading, so w = 1/C on every channel and the output is x itself
    model = CssTask(_cfg(simulated, "stft")).build_model().eval()
    torch.nn.init.zeros_(model.mask.weight)
    torch.nn.init.constant_(model.mask.bias, 50.0)
    x = torch.randn(8000)
    with torch.no_grad():
        y = model.mvdr(x.repeat(7, 1))
    assert y.shape == (2, 8000) and torch.allclose(y[0], x, atol=1e-4)


def test_mvdr_needs_a_multichannel_session(simulated, tmp_path, env):
    cfg = _cfg(simulated, "stft")
    task = CssTask(cfg)
    Trainer(cfg.trainer, task, task.build_model(), tmp_path / "exp").train()
    d = make_data_dir(tmp_path / "mono", {"a": 1}, seconds=1.0)
    (d / "segments").write_text("a-0000 a-0000 0.0 0.5\n")
    p = run(["python", "-m", "wavlm.bin.css_separate", "--model", str(tmp_path / "exp" / "checkpoint_last.pt"),
             "--data", str(d), "--out", str(tmp_path / "sep"), "--mvdr"], env, check=False)
    assert p.returncode == 1 and "--mvdr needs a multi-channel recording" in p.stderr and "wav.scp:1" in p.stderr


def test_resume_is_exact(simulated, tmp_path):
    def train(exp, updates):
        cfg = _cfg(simulated, "stft")
        cfg.trainer.max_updates, cfg.trainer.save_interval_updates = updates, 2
        cfg.trainer.schedule.kind = "constant"
        task = CssTask(cfg)
        model = task.build_model()
        Trainer(cfg.trainer, task, model, exp).train()
        return model.state_dict()

    whole = train(tmp_path / "a", 4)
    train(tmp_path / "b", 2)
    resumed = train(tmp_path / "b", 4)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
