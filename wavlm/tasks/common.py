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


def train_batches(lengths: dict[str, int], max_tokens: int, max_sample_size: int, seed: int, epoch: int
                  ) -> list[list[str]]:
    """This epoch's batches of utterance ids (dynamic batching by samples, shuffled per epoch)."""
    return make_batches(lengths, max_tokens, max_sample_size, seed, epoch)


def valid_batches(lengths: dict[str, int], max_tokens: int, max_sample_size: int, max_batches: int
                  ) -> list[list[str]]:
    """The validation batches in a fixed order, at most `max_batches` (0: all), each marked "valid"."""
    batches = make_batches(lengths, max_tokens, max_sample_size, 0, 0, shuffle=False)
    return [["valid", *b] for b in (batches[:max_batches] if max_batches else batches)]
