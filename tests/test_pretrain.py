"""Pre-training pieces: batching/cropping, span masking, the loss, a tiny run (utterance mixing: test_mixing.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_data_dir

from wavlm.cluster.labels import LabelError
from wavlm.config import from_dict
from wavlm.data.batching import crop_batch, make_batches
from wavlm.data.datadir import compute_utt2dur
from wavlm.models.pretrain_head import WavLMForPretraining
from wavlm.models.wavlm import WavLMConfig, compute_mask_indices
from wavlm.tasks.pretrain import PretrainConfig, PretrainTask

TINY = {"encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 4,
        "conv_feature_layers": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2", "conv_pos": 8,
        "conv_pos_groups": 4, "num_buckets": 16, "max_distance": 40, "mask_prob": 0.8, "mask_length": 10,
        "feature_grad_mult": 0.1, "encoder_layerdrop": 0.0, "dropout": 0.0, "attention_dropout": 0.0}


def test_batches_respect_max_tokens_and_cover_everything():
    rng = np.random.default_rng(0)
    lengths = {f"u{i:03d}": int(rng.integers(16000, 160000)) for i in range(300)}
    batches = make_batches(lengths, max_tokens=400000, max_sample_size=100000, seed=1, epoch=1)
    assert sorted(u for b in batches for u in b) == sorted(lengths)
    for b in batches:
        assert len(b) * max(min(lengths[u], 100000) for u in b) <= 400000
    assert batches != make_batches(lengths, 400000, 100000, seed=1, epoch=2)
    assert batches == make_batches(lengths, 400000, 100000, seed=1, epoch=1)


def test_crop_batch_to_shortest():
    wavs = [np.arange(n, dtype=np.float32) for n in (1000, 1500, 3000)]
    audio, lens, starts = crop_batch(wavs, 1200, np.random.default_rng(0))
    assert audio.shape == (3, 1000) and list(lens) == [1000] * 3 and starts[0] == 0
    for i in range(3):
        assert np.array_equal(audio[i], wavs[i][starts[i]:starts[i] + 1000])


def test_span_masking_fraction_and_lengths():
    rng = np.random.default_rng(0)
    mask = compute_mask_indices((64, 500), None, 0.8, 10, min_masks=2, rng=rng)
    # expected coverage of prob 0.8 with overlapping spans of 10: 1 - exp(-0.8) ~ 0.55 (fairseq's behaviour)
    assert 0.45 < mask.mean() < 0.65
    assert len(set(mask.sum(1))) == 1  # same number of masked frames in every row
    # a single row keeps whole spans (rows of a batch are cut down to the same count at random, as fairseq)
    for seed in range(20):
        row = compute_mask_indices((1, 500), None, 0.8, 10, min_masks=2, rng=np.random.default_rng(seed))[0]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        assert min(edges[1::2] - edges[::2]) >= 10


def test_loss_hand_computed():
    cfg = WavLMConfig(**TINY)
    model = WavLMForPretraining(cfg, num_classes=3, final_dim=2, logit_temp=0.5)
    with torch.no_grad():
        model.final_proj.weight.zero_()
        model.final_proj.weight[0, 0] = 1.0
        model.final_proj.weight[1, 1] = 1.0
        model.final_proj.bias.zero_()
        model.label_embs_concat.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]))
    x = torch.tensor([[3.0, 4.0] + [0.0] * 30])  # proj = (3, 4)/5
    logits = model.logits(x)[0]
    # cosines with (1,0), (0,1), (-1,-1)/sqrt2 divided by temperature 0.5
    want = torch.tensor([0.6, 0.8, -(0.6 + 0.8) / math.sqrt(2)]) / 0.5
    assert torch.allclose(logits, want, atol=1e-6)
    ce = -math.log(math.exp(want[1]) / sum(math.exp(v) for v in want))
    assert F.cross_entropy(logits[None], torch.tensor([1])).item() == pytest.approx(ce, rel=1e-6)


def tiny_task(tmp_path, mix_prob=0.0, label_len_fix=0, **data):
    d = {}
    for name, spks in (("train", {"a": 4, "b": 4}), ("dev", {"c": 2})):
        dd = make_data_dir(tmp_path / name, spks, seconds=1.0)
        compute_utt2dur(dd)
        rng = np.random.default_rng(len(name))
        lines = []
        for u in sorted(ln.split()[0] for ln in (dd / "utt2spk").read_text().splitlines()):
            n = 49 + label_len_fix  # 1 s at 50 Hz: (16000 - 400) // 320 + 1 frames
            lines.append(f"{u} {' '.join(str(x) for x in rng.integers(0, 5, n))}\n")
        (tmp_path / f"{name}.km").write_text("".join(lines))
        d[name] = dd
    cfg = from_dict(PretrainConfig, {
        "model_preset": "base", "model": TINY, "final_dim": 16, "mix": {"prob": mix_prob},
        "data": {"train": str(d["train"]), "valid": str(d["dev"]), "train_labels": str(tmp_path / "train.km"),
                 "valid_labels": str(tmp_path / "dev.km"), "num_classes": 5, "label_rate": 50,
                 "max_tokens": 64000, "max_sample_size": 16000, "min_sample_size": 8000, **data},
        "trainer": {"max_updates": 4, "num_workers": 0, "log_interval": 2, "save_interval_updates": 2,
                    "valid_interval_updates": 2, "optim": {"lr": 1e-3}}})
    return PretrainTask(cfg)


def test_task_batch_and_loss_are_consistent(tmp_path):
    task = tiny_task(tmp_path, mix_prob=1.0)
    batches = task.train_batches(1)
    assert sorted(u for b in batches for u in b) == sorted(task.train_lengths)
    b = task.load_batch(batches[0], seed=3)
    assert b.wav.shape[1] == 16000 and b.labels.shape[1] == 50 and b.mixed == len(b.ids)
    for i, u in enumerate(b.ids):  # the primary utterance's labels are kept under mixing
        lab = task.train_labels[u]  # 49 frames for 1 s; the 50th label slot is padding
        assert len(lab) == 49 and torch.equal(b.labels[i, :49], torch.from_numpy(lab)) and b.labels[i, 49] == -100
    torch.manual_seed(0)
    model = task.build_model()
    loss, n, logs = task.loss(model, b)
    assert n == logs["count_m"] > 0 and torch.isfinite(loss)
    assert logs["loss"] == pytest.approx(logs["loss_m"] + 10 * logs["features_pen"], rel=1e-5)
    assert logs["loss_m"] / n == pytest.approx(math.log(5), rel=0.3)  # near chance at init


def test_label_length_mismatch_names_utterance(tmp_path):
    with pytest.raises(LabelError, match=r"train.km: utterance a-0000: 59 labels at 50/s span 1.180s but the audio"):
        tiny_task(tmp_path, label_len_fix=10)


def test_corrupt_audio_names_the_utterance(tmp_path):
    from wavlm.data.audio import AudioError

    task = tiny_task(tmp_path)
    (tmp_path / "train" / "wavs" / "b-0001.wav").write_bytes(b"RIFF....WAVEbroken")
    batch = next(b for b in task.train_batches(1) if "b-0001" in b)
    with pytest.raises(AudioError, match=r"train/wav.scp:6 \(utterance b-0001\): cannot read audio"):
        task.load_batch(batch, seed=0)


def test_all_too_short_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no utterance is at least min_sample_size 16001 samples long"):
        tiny_task(tmp_path, min_sample_size=16001)
