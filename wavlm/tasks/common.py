"""Pieces every task needs: the model config from a preset plus overrides, utterance lengths."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from wavlm.config import ConfigError, load_yaml
from wavlm.data.batching import make_batches
from wavlm.data.datadir import DataDir
from wavlm.models.wavlm import WavLMConfig

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
