"""WavLM pre-training: masked prediction of k-means labels (HuBERT) plus denoising by utterance mixing.

loss = CE(masked frames) + pred_nomask_weight * CE(unmasked frames) + feature_pen_weight * penalty * N,
with logits = cosine(final_proj(h), label embedding) / logit_temp; N is the number of masked frames
(the sample size the trainer divides by).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wavlm.cluster.labels import LabelError, read_labels, verify_label_length
from wavlm.data.audio import read_utterance
from wavlm.data.batching import crop_batch
from wavlm.data.datadir import DataDir
from wavlm.data.mixing import MixConfig, mix_batch
from wavlm.models.pretrain_head import WavLMForPretraining
from wavlm.models.wavlm import WavLMConfig, compute_mask_indices
from wavlm.tasks.common import UtteranceBatching, load_model_config, read_lengths
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class PretrainDataConfig:
    train: str = "data/train"
    valid: str = "data/dev"
    train_labels: str = ""  # `utt l1 l2 ...` files from the k-means stage
    valid_labels: str = ""
    label_rate: float = 50.0  # 100 for MFCC k-means labels, 50 for hidden-unit labels
    num_classes: int = 100
    max_tokens: int = 1_400_000  # samples per batch per GPU (fairseq's max_tokens)
    max_sample_size: int = 250_000  # crop longer utterances (15.6 s)
    min_sample_size: int = 32_000  # drop shorter utterances (2 s)
    valid_max_batches: int = 50  # 0: the whole valid set


@dataclass
class PretrainConfig:
    model_preset: str = "base"  # conf/model/<name>.yaml (or a path); `model` overrides its keys
    model: dict = field(default_factory=dict)
    final_dim: int = 256  # 256 for Base, 768 for Large
    logit_temp: float = 0.1
    pred_masked_weight: float = 1.0
    pred_nomask_weight: float = 0.0
    feature_pen_weight: float = 10.0
    mix: MixConfig = field(default_factory=MixConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class PretrainBatch:
    wav: torch.Tensor  # [B, S]
    lengths: torch.Tensor  # [B]
    labels: torch.Tensor  # [B, L] (-100 where none)
    ids: list[str]
    mixed: int = 0

    def to(self, device: torch.device) -> PretrainBatch:
        return PretrainBatch(self.wav.to(device), self.lengths.to(device), self.labels.to(device), self.ids,
                             self.mixed)


class PretrainTask(UtteranceBatching):
    best_metric = ("loss", "min")  # masked-prediction loss on the validation set (fairseq's default)

    def __init__(self, cfg: PretrainConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        self.model_cfg: WavLMConfig = load_model_config(cfg.model_preset, cfg.model)
        # layerdrop skips layers, feature_grad_mult 0 runs the CNN without gradients: DDP must search the graph
        self.find_unused_parameters = self.model_cfg.encoder_layerdrop > 0 or self.model_cfg.feature_grad_mult == 0
        d = cfg.data
        self.train_dir, self.valid_dir = DataDir(d.train), DataDir(d.valid)
        self.train_lengths = self._usable(self.train_dir, d.train_labels)
        self.valid_lengths = self._usable(self.valid_dir, d.valid_labels)
        self.train_labels = read_labels(d.train_labels)
        self.valid_labels = read_labels(d.valid_labels)
        self._check_labels(self.train_lengths, self.train_labels, d.train_labels)
        self._check_labels(self.valid_lengths, self.valid_labels, d.valid_labels)
        self.noises: list[str] = []
        if cfg.mix.prob > 0 and cfg.mix.noise_prob > 0:
            if not cfg.mix.noise_data:
                raise ValueError("mix.noise_prob > 0 needs mix.noise_data (a data dir of noise recordings)")
            nd = DataDir(cfg.mix.noise_data)
            self.noise_dir = nd
            self.noises = nd.utt_ids()
        log.info("pre-training on %d utterances (%.1f h), validating on %d; %d classes at %g Hz",
                 len(self.train_lengths), sum(self.train_lengths.values()) / 16000 / 3600,
                 len(self.valid_lengths), d.num_classes, d.label_rate)

    # ---- data ------------------------------------------------------------------------------------
    def _usable(self, d: DataDir, labels_path: str) -> dict[str, int]:
        lengths = read_lengths(d)
        short = [u for u, n in lengths.items() if n < self.cfg.data.min_sample_size]
        if short:
            log.warning("%s: skipping %d utterances shorter than min_sample_size %d samples (e.g. %s)",
                        d.path, len(short), self.cfg.data.min_sample_size, ", ".join(short[:3]))
        usable = {u: n for u, n in lengths.items() if n >= self.cfg.data.min_sample_size}
        if not usable:
            raise ValueError(f"{d.path}: no utterance is at least min_sample_size "
                             f"{self.cfg.data.min_sample_size} samples long")
        return usable

    def _check_labels(self, lengths: dict[str, int], labels: dict[str, np.ndarray], path: str) -> None:
        missing = [u for u in lengths if u not in labels]
        if missing:
            raise LabelError(f"{path}: no labels for {len(missing)} utterances of the data dir, e.g. {missing[0]}")
        k = self.cfg.data.num_classes
        for u, n in lengths.items():
            try:
                verify_label_length(u, len(labels[u]), n, self.cfg.data.label_rate)
            except LabelError as e:
                raise LabelError(f"{path}: {e}") from None
            if labels[u].min() < 0 or labels[u].max() >= k:
                raise LabelError(f"{path}: labels of utterance {u} are outside 0..{k - 1} (data.num_classes {k})")

    def load_batch(self, ids: list[str], seed: int) -> PretrainBatch:
        valid = ids[0] == "valid"
        if valid:
            ids = ids[1:]
        data_dir, labels = (self.valid_dir, self.valid_labels) if valid else (self.train_dir, self.train_labels)
        rng = np.random.default_rng(seed)
        wavs = [read_utterance(data_dir, u) for u in ids]
        audio, lengths, starts = crop_batch(wavs, self.cfg.data.max_sample_size, rng)
        mixed = 0
        if not valid and self.cfg.mix.prob > 0:
            noises = None
            if self.noises:
                picks = rng.choice(len(self.noises), size=min(len(self.noises), 4), replace=False)
                noises = [read_utterance(self.noise_dir, self.noises[i]) for i in picks]
            audio, infos = mix_batch(audio, lengths, self.cfg.mix, rng, noises)
            mixed = sum(i.kind != "none" for i in infos)
        rate = self.cfg.data.label_rate / 16000
        size = int(round(audio.shape[1] * rate))
        lab = np.full((len(ids), size), -100, dtype=np.int64)
        for i, u in enumerate(ids):
            s = int(round(starts[i] * rate))
            seg = labels[u][s:s + size]
            lab[i, :len(seg)] = seg
        return PretrainBatch(torch.from_numpy(audio), torch.from_numpy(lengths), torch.from_numpy(lab), ids,
                             mixed)

    # ---- model -------------------------------------------------------------------------------------
    def build_model(self) -> WavLMForPretraining:
        torch.manual_seed(self.cfg.trainer.seed)  # torch seeds its default generator randomly per process
        return WavLMForPretraining(self.model_cfg, self.cfg.data.num_classes, self.cfg.final_dim,
                                   self.cfg.logit_temp, self.cfg.data.label_rate)

    def _mask(self, model: torch.nn.Module, batch: PretrainBatch) -> torch.Tensor:
        core = getattr(model, "module", model).wavlm
        frames = int(core.output_lengths(torch.tensor([batch.wav.shape[1]]))[0])
        # numpy RNG seeded from torch's, which the trainer re-seeds every update: exact resume
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        c = self.model_cfg
        mask = compute_mask_indices((len(batch.ids), frames), None, c.mask_prob, c.mask_length, min_masks=2,
                                    no_overlap=c.no_mask_overlap, min_space=c.mask_min_space, rng=rng)
        return torch.from_numpy(mask)

    def _forward(self, model: torch.nn.Module, batch: PretrainBatch) -> tuple[torch.Tensor, float, dict]:
        batch = batch.to(self.device)
        out = model(batch.wav, batch.lengths, batch.labels, self._mask(model, batch).to(self.device))
        c = self.cfg
        loss_m = F.cross_entropy(out.logits_masked, out.targets_masked, reduction="sum")
        loss_u = F.cross_entropy(out.logits_unmasked, out.targets_unmasked, reduction="sum")
        n = float(out.targets_masked.numel())
        loss = c.pred_masked_weight * loss_m + c.feature_pen_weight * out.features_pen * n
        if c.pred_nomask_weight > 0:
            loss = loss + c.pred_nomask_weight * loss_u
        with torch.no_grad():
            logs = {
                "loss": float(loss), "loss_m": float(loss_m), "features_pen": float(out.features_pen) * n,
                "acc_m": float((out.logits_masked.argmax(-1) == out.targets_masked).sum()), "count_m": n,
                "acc_u": float((out.logits_unmasked.argmax(-1) == out.targets_unmasked).sum()),
                "count_u": float(out.targets_unmasked.numel()), "mixed": float(batch.mixed),
            }
        return loss, n, logs

    def loss(self, model: torch.nn.Module, batch: PretrainBatch) -> tuple[torch.Tensor, float, dict]:
        return self._forward(model, batch)

    def valid_step(self, model: torch.nn.Module, batch: PretrainBatch) -> dict[str, float]:
        _, _, logs = self._forward(model, batch)
        return logs

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / max(sums["count_m"], 1.0),
                "acc_masked": sums["acc_m"] / max(sums["count_m"], 1.0),
                "acc_unmasked": sums["acc_u"] / max(sums["count_u"], 1.0)}

    # ---- checkpoints ---------------------------------------------------------------------------------
    def model_state(self, model: WavLMForPretraining) -> dict[str, Any]:
        """Official layout: `cfg` + `model` (encoder weights, official key names); the head beside it."""
        return {"cfg": self.model_cfg.to_official(), "model": model.wavlm.state_dict(),
                "pretrain_head": {k: v.detach() for k, v in model.head_state().items()},
                "task": "pretrain", "label_rate": self.cfg.data.label_rate,
                "num_classes": self.cfg.data.num_classes}

    def load_model_state(self, model: WavLMForPretraining, state: dict[str, Any]) -> None:
        model.wavlm.load_state_dict(state["model"])
        head = state["pretrain_head"]
        model.final_proj.load_state_dict({"weight": head["final_proj.weight"], "bias": head["final_proj.bias"]})
        model.label_embs_concat.data.copy_(head["label_embs_concat"])

