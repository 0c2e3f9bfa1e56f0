"""Speaker-verification pieces: augmentation (SNR as drawn, reverberation), the speaker split policy,
one training step of each front end, embeddings from a checkpoint."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, make_data_dir

from wavlm.config import from_dict
from wavlm.data.augment import AugmentConfig, Augmenter, reverberate
from wavlm.data.datadir import compute_utt2dur
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.sv import SvConfig, SvDataError, SvTask, load_sv_model, split_speakers
from wavlm.train.trainer import Trainer


def _dir(tmp_path, name, spk_utts, seconds):
    d = make_data_dir(tmp_path / name, spk_utts, seconds=seconds)
    compute_utt2dur(d)
    return d


@pytest.mark.parametrize("kind", ["noise", "music", "babble"])
def test_additive_augmentation_snr_is_the_drawn_one(tmp_path, kind):
    noise = _dir(tmp_path, "musan", {"n1": 3}, seconds=0.7)  # shorter than the speech: tiled
    key = {"noise": "noise_data", "music": "music_data", "babble": "speech_data"}[kind]
    aug = Augmenter(from_dict(AugmentConfig, {"prob": 1.0, key: str(noise)}))
    rng = np.random.default_rng(5)
    for _ in range(20):
        clean = np.random.default_rng(int(rng.integers(1 << 30))).standard_normal(16000).astype(np.float32)
        out, info = aug(clean, rng)
        assert info.kind == kind and len(out) == len(clean)
        lo, hi = {"noise": (0, 15), "music": (5, 15), "babble": (13, 20)}[kind]
        assert lo <= info.snr <= hi
        added = out.astype(np.float64) - clean
        snr = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(added ** 2))
        assert abs(snr - info.snr) < 0.1
        if kind == "babble":
            assert 3 <= len(info.sources) <= 7


def test_augmentation_probability_and_seed(tmp_path):
    noise = _dir(tmp_path, "musan", {"n1": 2}, seconds=1.0)
    aug = Augmenter(from_dict(AugmentConfig, {"prob": 0.5, "noise_data": str(noise)}))
    x = np.ones(8000, dtype=np.float32)
    kinds = [aug(x, np.random.default_rng(s))[1].kind for s in range(200)]
    assert 70 < kinds.count("noise") < 130
    a, b = aug(x, np.random.default_rng(3))[0], aug(x, np.random.default_rng(3))[0]
    assert np.array_equal(a, b)


def test_reverberation_with_a_delta_rir_is_identity():
    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    rir = np.zeros(300)
    rir[40] = 0.5  # a delayed, scaled direct path only: aligned and unit energy -> the input back
    assert np.allclose(reverberate(x, rir), x, atol=1e-5)
    rir[100] = 0.5
    y = reverberate(x, rir)
    assert np.allclose(y[60:], (x[60:] + x[:-60]) / np.sqrt(2), atol=1e-5)


def test_split_speakers_policy(caplog):
    lengths = {"a-1": 32000, "a-2": 32000, "a-3": 32000, "b-1": 32000, "c-1": 8000, "c-2": 32000}
    utt2spk = {u: u.split("-")[0] for u in lengths}
    with caplog.at_level(logging.WARNING):
        speakers, train, valid = split_speakers(utt2spk, lengths, 16000, 1, "data/x")
    assert speakers == ["a", "b", "c"]
    assert valid == {"a-3": "a"}  # b and c (after dropping c-1) have one utterance: all for training
    assert train == {"a-1": 0, "a-2": 0, "b-1": 1, "c-2": 2}
    assert "skipping utterance c-1: 0.50 s is shorter than data.min_seconds" in caplog.text
    assert "2 speakers have a single utterance" in caplog.text
    with pytest.raises(SvDataError, match="AAM-softmax needs at least 2"):
        split_speakers({"a-1": "a"}, {"a-1": 32000}, 16000, 1, "data/x")


def _cfg(train, frontend, init="", **model):
    return from_dict(SvConfig, {
        "model": {"frontend": frontend, "init": init, "preset": "debug", "channels": 16, "embed_dim": 8,
                  **model},
        "data": {"train": str(train), "crop_seconds": 0.5, "min_seconds": 0.5, "batch_size": 4,
                 "augment": {"prob": 0.0}},
        "trainer": {"max_updates": 2, "save_interval_updates": 2, "valid_interval_updates": 2, "num_workers": 0}})


@pytest.mark.parametrize("frontend", ["wavlm", "fbank"])
def test_train_and_embed(tmp_path, frontend):
    train = _dir(tmp_path, "train", {"s1": 3, "s2": 3, "s3": 2}, seconds=0.8)
    init = ""
    if frontend == "wavlm":
        torch.manual_seed(0)
        save_checkpoint(tmp_path / "init.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
        init = str(tmp_path / "init.pt")
    cfg = _cfg(train, frontend, init, freeze_encoder=frontend == "wavlm")
    task = SvTask(cfg)
    model = task.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(cfg.trainer, task, model, tmp_path / "exp").train()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("spk.ecapa.") for k in changed)
    assert not any(k.startswith("spk.wavlm.") for k in changed)  # frozen encoder (or none)
    spk, fe, bins = load_sv_model(str(tmp_path / "exp" / "checkpoint_last.pt"))
    assert fe == frontend
    from wavlm.tasks.sv import frontend_input

    wav = np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1
    with torch.no_grad():
        e1 = spk(torch.from_numpy(frontend_input(wav, fe, bins))[None])
        e2 = model.spk.eval()(torch.from_numpy(frontend_input(wav, fe, bins))[None])
    assert e1.shape == (1, 8) and torch.allclose(e1, e2, atol=1e-5)


def test_stage2_starts_from_stage1_and_trains_the_encoder_slower(tmp_path):
    train = _dir(tmp_path, "train", {"s1": 3, "s2": 3}, seconds=0.8)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "init.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    cfg1 = _cfg(train, "wavlm", str(tmp_path / "init.pt"), freeze_encoder=True)
    t1 = SvTask(cfg1)
    Trainer(cfg1.trainer, t1, t1.build_model(), tmp_path / "s1").train()
    cfg2 = _cfg(train, "wavlm", str(tmp_path / "init.pt"), init_sv=str(tmp_path / "s1" / "checkpoint_last.pt"),
                encoder_lr_scale=0.1)
    t2 = SvTask(cfg2)
    m2 = t2.build_model()
    s1 = torch.load(tmp_path / "s1" / "checkpoint_last.pt", weights_only=True)
    assert torch.equal(m2.spk.ecapa.conv.weight, s1["sv_head"]["ecapa.conv.weight"])
    groups = t2.param_groups(m2)
    assert [g["lr_scale"] for g in groups] == [1.0, 0.1]
    # the whole encoder but mask_emb (never used: speaker training does not mask) trains at the lower rate
    assert sum(p.numel() for p in groups[1]["params"]) == sum(p.numel() for n, p in m2.spk.wavlm.named_parameters()
                                                               if n != "mask_emb")


def test_musan_and_rirs_data_dirs(tmp_path):
    from conftest import write_wav

    from wavlm.data.corpora.common import CorpusError
    from wavlm.data.corpora.musan import prepare_musan, prepare_rirs
    from wavlm.data.datadir import DataDir

    for part in ("noise", "music", "speech"):
        for i in range(2):
            write_wav(tmp_path / "musan" / part / "src" / f"{part}-src-{i:04d}.wav", 0.3, seed=i)
    for room in ("smallroom", "largeroom"):  # equal file names in two rooms stay two recordings
        write_wav(tmp_path / "RIRS_NOISES" / "simulated_rirs" / room / "Room001" / "Room001-00001.wav", 0.1)
        (tmp_path / "RIRS_NOISES" / "simulated_rirs" / room / "rir_list").write_text(
            f"--rir-id {room}-Room001-00001 --room-id {room}-Room001 "
            f"RIRS_NOISES/simulated_rirs/{room}/Room001/Room001-00001.wav\n")
    dirs = prepare_musan(tmp_path / "musan", tmp_path / "data")
    assert [d.name for d in dirs] == ["musan_noise", "musan_music", "musan_speech"]
    assert DataDir(dirs[0]).utt_ids() == ["noise-noise-src-0000", "noise-noise-src-0001"]
    (rirs,) = prepare_rirs(tmp_path / "RIRS_NOISES", tmp_path / "data")
    assert len(DataDir(rirs).utt_ids()) == 2
    with pytest.raises(CorpusError, match="no music/"):
        prepare_musan(tmp_path / "RIRS_NOISES", tmp_path / "data", ["music"])
    with pytest.raises(CorpusError, match="openslr.org resource 28"):
        prepare_rirs(tmp_path / "musan", tmp_path / "data")


def test_resume_is_exact_and_silent_audio_is_refused(tmp_path, capsys):
    import soundfile as sf

    from wavlm.bin import sv_embed

    train = _dir(tmp_path, "train", {"s1": 3, "s2": 3}, seconds=0.8)
    noise = _dir(tmp_path, "noise", {"n1": 2}, seconds=0.5)

    def train_run(exp, updates):
        cfg = _cfg(train, "fbank")
        cfg.data.augment = from_dict(AugmentConfig, {"prob": 0.7, "noise_data": str(noise)})
        cfg.trainer.max_updates, cfg.trainer.save_interval_updates = updates, 2
        cfg.trainer.schedule.kind = "constant"
        task = SvTask(cfg)
        model = task.build_model()
        Trainer(cfg.trainer, task, model, exp).train()
        return model.state_dict()

    whole = train_run(tmp_path / "a", 4)
    train_run(tmp_path / "b", 2)
    resumed = train_run(tmp_path / "b", 4)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)  # incl. BatchNorm statistics

    test = _dir(tmp_path, "test", {"t1": 2}, seconds=1.0)
    silent = tmp_path / "test" / "wavs" / "t1-0001.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    out = tmp_path / "emb"
    assert sv_embed.main(["--model", str(tmp_path / "a" / "checkpoint_last.pt"), "--data", str(test),
                          "--out", str(out)]) == 1
    assert "wav.scp:2 (utterance t1-0001): silent audio" in capsys.readouterr().err
    assert not (out / "emb.scp").exists()
