"""Pieces every task needs: the model config from a preset plus overrides, utterance lengths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wavlm.config import ConfigError, load_yaml
from wavlm.data.batching import make_batches
from wavlm.data.datadir import DataDir
from wavlm.models.checkpoint import CheckpointError, torch_load
from wavlm.models.wavlm import WavLM, WavLMConfig

CONF_MODEL = Path(__file__).resolve().parents[2] / "conf" / "model"


def load_model_config(preset: str, overrides: dict[str, Any] | None = None) -> WavLMConfig:
    """`preset` is a name in conf/model/ (base, base_plus, large, debug) or a YAML path."""
    path = Path(preset)
    if not path.suffix:
        path = CONF_MODEL / f"{preset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONF_MODEL.glob("*.yaml"))
        raise ConfigError(f"model preset {preset!r}: {path} not found (presets: {known})")
    data = {**load_yaml(path), **(overrides or {})}
    try:
        return WavLMConfig.from_dict(data)
    except Exception as e:
        raise ConfigError(f"{path} with overrides {overrides}: {e}") from None


def read_lengths(d: DataDir, sample_rate: int = 16000) -> dict[str, int]:
    """Utterance lengths in samples from utt2dur (run utils/data/get_utt2dur.sh first)."""
    return {u: int(round(s * sample_rate)) for u, s in d.utt2dur().items()}


class UtteranceBatching:
    """`train_batches`/`valid_batches` of the trainer's task interface for tasks whose batches are lists of
    utterance ids grouped by length (dynamic batching by samples, fairseq's max_tokens). The task has
    `self.train_lengths`, `self.valid_lengths` (samples) and `self.cfg` with `data.max_tokens`,
    `data.max_sample_size`, `data.valid_max_batches` (0: all) and `trainer.seed`."""

    def train_batches(self, epoch: int) -> list[list[str]]:
        d = self.cfg.data
        return make_batches(self.train_lengths, d.max_tokens, d.max_sample_size, self.cfg.trainer.seed, epoch)

    def valid_batches(self) -> list[list[str]]:
        """The validation batches in a fixed order, each marked "valid" for load_batch."""
        d = self.cfg.data
        batches = make_batches(self.valid_lengths, d.max_tokens, d.max_sample_size, 0, 0, shuffle=False)
        return [["valid", *b] for b in (batches[: d.valid_max_batches] if d.valid_max_batches else batches)]


# ---- checkpoints of the downstream tasks: the encoder under the official names (`cfg` + `model`) beside
# the task's own weights; one reader for all of them ---------------------------------------------------------


def read_task_checkpoint(path: str, task: str, what: str) -> dict[str, Any]:
    """A checkpoint written by the trainer for `task`; anything else is an error naming `what` it should be."""
    state = torch_load(path)
    if not isinstance(state, dict) or state.get("task") != task:
        raise CheckpointError(f"{path}: not {what} (no task {task!r})")
    return state


def encoder_from_state(state: dict[str, Any]) -> WavLM | None:
    """The WavLM encoder a task checkpoint holds (None for a front end without one, e.g. filterbanks)."""
    if state.get("model") is None:
        return None
    encoder = WavLM(WavLMConfig.from_official(state["cfg"]))
    encoder.load_state_dict(state["model"])
    return encoder


def load_head(module: torch.nn.Module, head: dict[str, torch.Tensor], path: str) -> None:
    """Load everything of `module` but its `wavlm.` encoder from `head`; keys that do not fit are an error."""
    missing, unexpected = module.load_state_dict(head, strict=False)
    missing = [k for k in missing if not k.startswith("wavlm.")]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit this model: missing {missing[:5]}, "
                              f"unexpected {list(unexpected)[:5]}")


def skips_parameters(encoder: WavLM | None, frozen: bool = False) -> bool:
    """Whether a trained encoder leaves some of its parameters without a gradient in some steps (layerdrop, a
    CNN run without gradients), which DDP must be told (`find_unused_parameters`, a graph search per step)."""
    if encoder is None or frozen:
        return False
    return encoder.cfg.encoder_layerdrop > 0 or encoder.cfg.feature_grad_mult == 0


def encoder_param_groups(model: torch.nn.Module, prefix: str, encoder_lr_scale: float) -> list[dict]:
    """The trainer's `param_groups`: the new back end at the full rate, the pre-trained encoder (parameters
    named `prefix...`) at `encoder_lr_scale` of it; frozen parameters left out."""
    enc = [p for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith(prefix) and p.requires_grad]
    return [{"params": rest, "lr_scale": 1.0}] + ([{"params": enc, "lr_scale": encoder_lr_scale}] if enc else [])
