"""Continuous speech separation training (wavlm/models/css.py): masks for two speakers and the noise,
permutation-invariant MSE of the masked magnitudes against the targets' magnitudes (the two speakers
permuted, the noise fixed), on the simulated mixtures of `wavlm.bin.simulate_css` (channel 0, the centre
mic; targets: each speaker's early-reverberant image and the noise there).

Validation reports the loss and the SI-SDR improvement of the separated speakers (PIT order) over the
mixture, on the simulated dev set.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from wavlm.data.audio import check_audio, read_audio
from wavlm.data.datadir import DataDir, read_table
from wavlm.metrics.sisdr import si_sdr
from wavlm.models.checkpoint import load_model
from wavlm.models.css import HOP, N_FFT, MaskSeparator
from wavlm.models.separation import pit_loss, reorder, stft
from wavlm.tasks.common import (
    encoder_from_state,
    encoder_param_groups,
    load_head,
    read_task_checkpoint,
    skips_parameters,
)
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)
TARGETS = ("spk1", "spk2", "noise")


@dataclass
class CssDataConfig:
    train: str = "data/css_train"  # a wavlm.bin.simulate_css dir: wav.scp, spk1.scp, spk2.scp, noise.scp
    valid: str = "data/css_dev"
    batch_size: int = 8
    crop_seconds: float = 4.0
    valid_max_batches: int = 0


@dataclass
class CssModelConfig:
    frontend: str = "wavlm"  # wavlm (STFT + WavLM layers) | stft (the spectral baseline)
    init: str = ""  # WavLM checkpoint (ours, Microsoft's .pt, HF dir)
    freeze_encoder: bool = True
    encoder_lr_scale: float = 0.1  # when the encoder is trained
    conformer: dict = field(default_factory=dict)  # espnet2 ConformerEncoder arguments
    wavlm_proj: int = 256


@dataclass
class CssConfig:
    model: CssModelConfig = field(default_factory=CssModelConfig)
    data: CssDataConfig = field(default_factory=CssDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class CssBatch:
    mix: torch.Tensor  # [B, S]
    targets: torch.Tensor  # [B, 3, S]
    ids: list[str]

    def to(self, device: torch.device) -> CssBatch:
        return CssBatch(self.mix.to(device), self.targets.to(device), self.ids)


class SimulatedSet:
    """A simulate_css dir: mixture channel 0 and the three targets per segment."""

    def __init__(self, path: str):
        self.dir = DataDir(path)
        self.ids = self.dir.utt_ids()
        self.tables = {}
        for t in TARGETS:
            p = self.dir.path / f"{t}.scp"
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing (make the dir with python -m wavlm.bin.simulate_css)")
            self.tables[t] = read_table(p)
        if not self.ids:
            raise ValueError(f"{path}: no segments")

    def load(self, utt: str) -> tuple[np.ndarray, np.ndarray]:
        wav, sr = self.dir.load_audio(utt)
        mix = check_audio(wav, sr, what=self.dir.describe(utt), channel=0 if wav.ndim == 2 else None)
        tgts = []
        for t in TARGETS:
            x, tsr = read_audio(self.tables[t][utt], what=self.tables[t].where(utt))
            tgts.append(check_audio(x, tsr, what=self.tables[t].where(utt))[: len(mix)])
        return mix, np.stack(tgts)


class CssTask:
    best_metric = ("si_sdri", "max")  # SI-SDR improvement on the simulated validation mixtures
    def __init__(self, cfg: CssConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        if cfg.model.frontend not in ("wavlm", "stft"):
            raise ValueError(f"model.frontend must be wavlm or stft, got {cfg.model.frontend!r}")
        if cfg.model.frontend == "wavlm" and not cfg.model.init:
            raise ValueError("model.frontend wavlm needs model.init (a WavLM checkpoint)")
        self.train_set, self.valid_set = SimulatedSet(cfg.data.train), SimulatedSet(cfg.data.valid)
        log.info("separation training on %d segments, validating on %d; front end %s", len(self.train_set.ids),
                 len(self.valid_set.ids), cfg.model.frontend)

    # ---- data ----------------------------------------------------------------------------------
    def train_batches(self, epoch: int) -> list[list[str]]:
        rng = np.random.default_rng([self.cfg.trainer.seed, epoch])
        ids = [self.train_set.ids[i] for i in rng.permutation(len(self.train_set.ids))]
        b = self.cfg.data.batch_size
        return [ids[i:i + b] for i in range(0, len(ids) - b + 1, b)] or [ids]

    def valid_batches(self) -> list[list[str]]:
        ids, b = self.valid_set.ids, self.cfg.data.batch_size
        batches = [["valid", *ids[i:i + b]] for i in range(0, len(ids), b)]
        return batches[: self.cfg.data.valid_max_batches] if self.cfg.data.valid_max_batches else batches

    def load_batch(self, ids: list[str], seed: int) -> CssBatch:
        data = self.train_set
        if ids[0] == "valid":
            ids, data = ids[1:], self.valid_set
        rng = np.random.default_rng(seed)
        items = [data.load(u) for u in ids]
        n = min(min(len(m) for m, _ in items), int(self.cfg.data.crop_seconds * 16000))
        mixes, tgts = [], []
        for m, t in items:
            s = int(rng.integers(0, len(m) - n + 1))
            mixes.append(m[s:s + n])
            tgts.append(t[:, s:s + n])
        return CssBatch(torch.from_numpy(np.stack(mixes)), torch.from_numpy(np.stack(tgts).astype(np.float32)), ids)

    # ---- model ---------------------------------------------------------------------------------
    def build_model(self) -> MaskSeparator:
        m = self.cfg.model
        torch.manual_seed(self.cfg.trainer.seed)
        encoder = load_model(m.init, train=True, overrides={"mask_prob": 0.0}) if m.frontend == "wavlm" else None
        model = MaskSeparator(encoder, 2, m.conformer, m.wavlm_proj)
        model.frozen_encoder = m.freeze_encoder
        if encoder is not None:
            encoder.mask_emb.requires_grad_(False)  # separation training never masks
        self.find_unused_parameters = skips_parameters(encoder, m.freeze_encoder)
        if encoder is not None and m.freeze_encoder:
            for p in encoder.parameters():
                p.requires_grad_(False)
        return model

    def param_groups(self, model: MaskSeparator) -> list[dict]:
        return encoder_param_groups(model, "wavlm.", self.cfg.model.encoder_lr_scale)

    def _forward(self, model: torch.nn.Module, batch: CssBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = batch.to(self.device)
        masks, spec = model(batch.mix, spectra=True)  # through DDP's forward when distributed
        est = masks * spec.abs().unsqueeze(1)  # [B, 3, F, T]
        ref = stft(batch.targets, N_FFT, HOP).abs()
        loss, perm = pit_loss(est, ref, fixed_last=True)
        return loss, perm, masks * spec.unsqueeze(1)

    def loss(self, model: torch.nn.Module, batch: CssBatch) -> tuple[torch.Tensor, float, dict]:
        loss, _, _ = self._forward(model, batch)
        n = float(len(batch.ids))
        return loss.sum(), n, {"loss": float(loss.detach().sum()), "utts": n}

    def valid_step(self, model: torch.nn.Module, batch: CssBatch) -> dict[str, float]:
        from wavlm.models.separation import istft

        loss, perm, spec_est = self._forward(model, batch)
        wav = istft(reorder(spec_est, perm), batch.mix.shape[-1], N_FFT, HOP).cpu().numpy()
        mix, tgt = batch.mix.cpu().numpy(), batch.targets.cpu().numpy()
        sdri, n_src = 0.0, 0
        for b in range(len(batch.ids)):
            for s in range(2):
                if np.abs(tgt[b, s]).max() > 0:  # a single-speaker segment has a silent second target
                    sdri += si_sdr(wav[b, s], tgt[b, s]) - si_sdr(mix[b], tgt[b, s])
                    n_src += 1
        return {"loss": float(loss.sum()), "utts": float(len(batch.ids)), "si_sdri": sdri, "sources": float(n_src)}

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / max(sums["utts"], 1.0), "si_sdri": sums["si_sdri"] / max(sums["sources"], 1.0)}

    # ---- checkpoints ---------------------------------------------------------------------------
    def model_state(self, model: MaskSeparator) -> dict[str, Any]:
        state: dict[str, Any] = {
            "task": "css", "frontend": self.cfg.model.frontend, "conformer": dict(self.cfg.model.conformer),
            "wavlm_proj": self.cfg.model.wavlm_proj,
            "css_head": {k: v.detach() for k, v in model.state_dict().items() if not k.startswith("wavlm.")}}
        if model.wavlm is not None:
            state["cfg"], state["model"] = model.wavlm.cfg.to_official(), model.wavlm.state_dict()
        return state

    def load_model_state(self, model: MaskSeparator, state: dict[str, Any]) -> None:
        if model.wavlm is not None:
            model.wavlm.load_state_dict(state["model"])
        load_head(model, state["css_head"], "a checkpoint of this run")


def load_separator(path: str, device: str | torch.device = "cpu") -> MaskSeparator:
    state = read_task_checkpoint(path, "css", "a separation checkpoint of wavlm.bin.train_css")
    model = MaskSeparator(encoder_from_state(state), 2, state["conformer"], state["wavlm_proj"])
    load_head(model, state["css_head"], path)
    return model.to(device).eval()
