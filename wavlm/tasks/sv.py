"""Speaker verification: WavLM (weighted sum of all layers) or filterbanks -> ECAPA-TDNN -> 256-dim
embedding, trained with AAM-softmax (espnet2's `AAMSoftmax`) on fixed-length random crops with on-the-fly
augmentation (wavlm/data/augment.py).

Stages as in the paper: (1) WavLM frozen (`model.freeze_encoder: true`), only the ECAPA back end trains;
(2) everything jointly, the encoder at a lower rate (`model.encoder_lr_scale`), initialised from stage 1
(`model.init_sv`); optionally (3) large-margin fine-tuning: longer crops and a larger margin, from stage 2.

Validation holds out `data.valid_per_speaker` utterances of each training speaker that has more than
that many, and reports the AAM loss and the speaker-classification accuracy on them. Policy for
utterances shorter than `data.min_seconds`: skipped with a count (each named in the log, up to five);
a speaker left with one utterance trains but gives none to validation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wavlm.data.audio import read_utterance
from wavlm.data.augment import AugmentConfig, Augmenter
from wavlm.data.datadir import DataDir
from wavlm.features.fbank import compute_fbank
from wavlm.models.checkpoint import CheckpointError, load_model
from wavlm.models.speaker import SpeakerClassifier, SpeakerModel
from wavlm.models.wavlm import WavLM
from wavlm.tasks.common import (
    encoder_from_state,
    encoder_param_groups,
    load_head,
    load_model_config,
    read_lengths,
    read_task_checkpoint,
    skips_parameters,
)
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class SvDataConfig:
    train: str = "data/train"
    crop_seconds: float = 3.0
    min_seconds: float = 1.0  # shorter utterances are skipped
    batch_size: int = 64  # crops per batch per GPU
    valid_per_speaker: int = 1
    valid_max_batches: int = 0  # 0: all
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class SvModelConfig:
    frontend: str = "wavlm"  # wavlm | fbank
    init: str = ""  # WavLM checkpoint (ours, Microsoft's .pt, HF dir); "" = random init from `preset`
    preset: str = "base"
    encoder: dict = field(default_factory=dict)  # WavLMConfig overrides (dropouts, layerdrop)
    init_sv: str = ""  # an SV checkpoint of this task to start from (stage 2 from stage 1, ...)
    freeze_encoder: bool = False
    encoder_lr_scale: float = 0.1  # learning rate of the WavLM encoder relative to the back end
    fbank_bins: int = 80
    channels: int = 512  # ECAPA-TDNN width (512 or 1024 in the ECAPA paper)
    embed_dim: int = 256
    margin: float = 0.2
    scale: float = 32.0


@dataclass
class SvConfig:
    model: SvModelConfig = field(default_factory=SvModelConfig)
    data: SvDataConfig = field(default_factory=SvDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class SvBatch:
    x: torch.Tensor  # waveforms [B, S] or filterbanks [B, T, F]
    labels: torch.Tensor  # [B] speaker index
    ids: list[str]
    augmented: int = 0

    def to(self, device: torch.device) -> SvBatch:
        return SvBatch(self.x.to(device), self.labels.to(device), self.ids, self.augmented)


class SvDataError(ValueError):
    pass


def split_speakers(utt2spk: dict[str, str], lengths: dict[str, int], min_samples: int, valid_per_speaker: int,
                   where: str) -> tuple[list[str], dict[str, int], dict[str, str]]:
    """(speakers, training utterance -> speaker index, held-out utterance -> speaker) after dropping
    utterances shorter than min_samples."""
    short = sorted(u for u, n in lengths.items() if n < min_samples)
    for u in short[:5]:
        log.warning("%s: skipping utterance %s: %.2f s is shorter than data.min_seconds", where, u, lengths[u] / 16000)
    if short:
        log.warning("%s: skipped %d utterances shorter than data.min_seconds", where, len(short))
    by_spk: dict[str, list[str]] = {}
    for u in sorted(lengths):
        if lengths[u] >= min_samples:
            if u not in utt2spk:
                raise SvDataError(f"{where}: utterance {u} has no speaker in utt2spk")
            by_spk.setdefault(utt2spk[u], []).append(u)
    if len(by_spk) < 2:
        raise SvDataError(f"{where}: {len(by_spk)} speaker(s) with usable utterances; AAM-softmax needs at least 2")
    speakers = sorted(by_spk)
    index = {s: i for i, s in enumerate(speakers)}
    train: dict[str, int] = {}
    valid: dict[str, str] = {}
    singles = 0
    for s, utts in by_spk.items():
        k = valid_per_speaker if len(utts) > valid_per_speaker else 0
        singles += len(utts) == 1
        for u in utts[len(utts) - k:] if k else []:
            valid[u] = s
        for u in utts[: len(utts) - k]:
            train[u] = index[s]
    if singles:
        log.warning("%s: %d speakers have a single utterance: they train but give no validation utterance",
                    where, singles)
    return speakers, train, valid


class SvTask:
    best_metric = ("loss", "min")  # AAM-softmax loss on held-out utterances of the training speakers
    def __init__(self, cfg: SvConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        m, d = cfg.model, cfg.data
        if m.frontend not in ("wavlm", "fbank"):
            raise SvDataError(f"model.frontend must be wavlm or fbank, got {m.frontend!r}")
        self.data = DataDir(d.train)
        lengths = read_lengths(self.data)
        self.speakers, self.train_utts, self.valid_utts = split_speakers(
            self.data.utt2spk(), lengths, int(d.min_seconds * 16000), d.valid_per_speaker, str(self.data.path))
        self.speaker_index = {s: i for i, s in enumerate(self.speakers)}
        self.augment = Augmenter(d.augment)
        self.crop = int(d.crop_seconds * 16000)
        log.info("speaker embedding training on %d utterances of %d speakers (%.2f h), %d held out; front end %s; "
                 "augmentation %s", len(self.train_utts), len(self.speakers),
                 sum(lengths[u] for u in self.train_utts) / 16000 / 3600, len(self.valid_utts), m.frontend,
                 self.augment.kinds or "none")

    # ---- data ----------------------------------------------------------------------------------
    def train_batches(self, epoch: int) -> list[list[str]]:
        rng = np.random.default_rng([self.cfg.trainer.seed, epoch])
        utts = sorted(self.train_utts)
        order = [utts[i] for i in rng.permutation(len(utts))]
        b = self.cfg.data.batch_size
        return [order[i:i + b] for i in range(0, len(order) - b + 1, b)] or [order]

    def valid_batches(self) -> list[list[str]]:
        utts = sorted(self.valid_utts)
        b = self.cfg.data.batch_size
        batches = [["valid", *utts[i:i + b]] for i in range(0, len(utts), b)]
        n = self.cfg.data.valid_max_batches
        return batches[:n] if n else batches

    def _crop(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if len(wav) < self.crop:  # wrap around, as the ECAPA/VoxCeleb trainers pad short utterances
            wav = np.tile(wav, self.crop // len(wav) + 1)
        start = int(rng.integers(0, len(wav) - self.crop + 1))
        return wav[start:start + self.crop]

    def load_batch(self, ids: list[str], seed: int) -> SvBatch:
        valid = ids[0] == "valid"
        if valid:
            ids = ids[1:]
        rng = np.random.default_rng(seed)
        xs, augmented = [], 0
        for u in ids:
            wav = self._crop(read_utterance(self.data, u), rng)
            if not valid:
                wav, info = self.augment(wav, rng)
                augmented += info.kind != "none"
            xs.append(frontend_input(wav, self.cfg.model.frontend, self.cfg.model.fbank_bins))
        labels = [self.speaker_index[self.valid_utts[u]] if valid else self.train_utts[u] for u in ids]
        return SvBatch(torch.from_numpy(np.stack(xs)), torch.tensor(labels), ids, augmented)

    # ---- model ---------------------------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        m = self.cfg.model
        torch.manual_seed(self.cfg.trainer.seed)
        encoder = None
        if m.frontend == "wavlm":
            encoder = (load_model(m.init, train=True, overrides=m.encoder) if m.init
                       else WavLM(load_model_config(m.preset, m.encoder)))
        model = SpeakerClassifier(SpeakerModel(encoder, m.fbank_bins, m.channels, m.embed_dim), len(self.speakers),
                                  m.margin, m.scale)
        if m.init_sv:
            _load_sv_weights(model, m.init_sv, self.speakers)
        model.spk.frozen_encoder = m.freeze_encoder
        if encoder is not None:
            encoder.mask_emb.requires_grad_(False)  # speaker training never masks
        self.find_unused_parameters = skips_parameters(encoder, m.freeze_encoder)
        if m.freeze_encoder and encoder is not None:
            for p in encoder.parameters():
                p.requires_grad_(False)
        return model

    def param_groups(self, model: torch.nn.Module) -> list[dict]:
        return encoder_param_groups(model, "spk.wavlm.", self.cfg.model.encoder_lr_scale)

    def _forward(self, model: torch.nn.Module, batch: SvBatch) -> tuple[torch.Tensor, float, dict]:
        batch = batch.to(self.device)
        loss, acc = model(batch.x, batch.labels)  # through DDP's forward when distributed
        n = float(len(batch.ids))
        loss = loss * n  # espnet2's AAMSoftmax averages over the batch; the trainer divides sums
        return loss, n, {"loss": float(loss.detach()), "acc_spk": float(acc) * n, "count_spk": n,
                         "augmented": float(batch.augmented)}

    def loss(self, model: torch.nn.Module, batch: SvBatch) -> tuple[torch.Tensor, float, dict]:
        return self._forward(model, batch)

    def valid_step(self, model: torch.nn.Module, batch: SvBatch) -> dict[str, float]:
        return self._forward(model, batch)[2]

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("count_spk", 0.0), 1.0)
        return {"loss": sums["loss"] / n, "acc_speaker": sums["acc_spk"] / n}

    # ---- checkpoints ---------------------------------------------------------------------------
    def model_state(self, model: torch.nn.Module) -> dict[str, Any]:
        m = self.cfg.model
        state: dict[str, Any] = {"task": "sv", "frontend": m.frontend, "speakers": list(self.speakers),
                                 "sv_conf": {"fbank_bins": m.fbank_bins, "channels": m.channels,
                                             "embed_dim": m.embed_dim},
                                 "sv_head": model.spk.head_state(),
                                 "aam": {k: v.detach() for k, v in model.loss.state_dict().items()}}
        if model.spk.wavlm is not None:  # official layout: Microsoft's code loads the encoder
            state["cfg"] = model.spk.wavlm.cfg.to_official()
            state["model"] = model.spk.wavlm.state_dict()
        return state

    def load_model_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        if model.spk.wavlm is not None:
            model.spk.wavlm.load_state_dict(state["model"])
        load_head(model.spk, state["sv_head"], "a checkpoint of this run")
        model.loss.load_state_dict(state["aam"])


def frontend_input(wav: np.ndarray, frontend: str, fbank_bins: int = 80) -> np.ndarray:
    """What the speaker model takes: the waveform (WavLM) or its filterbank."""
    return compute_fbank(wav, fbank_bins) if frontend == "fbank" else wav


def _load_sv_weights(model: torch.nn.Module, path: str, speakers: list[str]) -> None:
    state = read_task_checkpoint(path, "sv", "a speaker-verification checkpoint (model.init_sv)")
    if (state.get("model") is None) != (model.spk.wavlm is None):
        raise CheckpointError(f"{path}: front end {state.get('frontend')} differs from this config's")
    if model.spk.wavlm is not None:
        model.spk.wavlm.load_state_dict(state["model"])
    load_head(model.spk, state["sv_head"], path)
    if list(state["speakers"]) == speakers:
        model.loss.load_state_dict(state["aam"])
    else:
        log.warning("%s: other training speakers; the AAM-softmax classes start afresh", path)
    log.info("initialised from %s", path)


def load_sv_model(path: str, device: str | torch.device = "cpu") -> tuple[SpeakerModel, str, int]:
    """(speaker model in eval mode, front end, filterbank bins) from a checkpoint of this task."""
    state = read_task_checkpoint(path, "sv", "a speaker-verification checkpoint of wavlm.bin.train_sv")
    c = state["sv_conf"]
    model = SpeakerModel(encoder_from_state(state), c["fbank_bins"], c["channels"], c["embed_dim"])
    load_head(model, state["sv_head"], path)
    return model.to(device).eval(), state["frontend"], c["fbank_bins"]
