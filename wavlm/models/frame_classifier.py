"""Frame classifiers (speaker diarization): Hugging Face's `WavLMForAudioFrameClassification` built from our pieces.

    import wavlm
    model = wavlm.load_frame_classifier("/models/wavlm-base-plus-sd")   # a HF WavLMForAudioFrameClassification dir
    out = model(wav, lengths)          # out.logits [B, T, num_labels] before the sigmoid; out.lengths [B] frames
    model.labels                       # config.json id2label, in label order

`FrameClassifier` has the submodules of `SuperbModel` with a linear head: `upstream` (a `WavLMUpstream`, frozen by
default) -> `featurizer` -> `head` (`nn.Linear(hidden, num_labels)`). The featurizer is `WeightedLayerSum` over
all L+1 hidden states when the config has `use_weighted_layer_sum` (HF's `layer_weights` are its `weights`: both
are softmaxed), else `LastHiddenState`. The hidden states have the model contract's (transformers 4.x's) meaning:
the last one carries the final LayerNorm of pre-LN (Large-style) encoders. transformers 5.x leaves that LayerNorm
off `hidden_states[-1]` unless the config sets `tie_last_hidden_states`, so for a pre-LN encoder with a weighted
sum, 5.x gives other logits for a config without that key; `export_frame_classifier` writes it.

Padded batches follow what the checkpoint's `preprocessor_config.json` makes Hugging Face's feature extractor do:
  * `return_attention_mask: true` (Microsoft's SD checkpoints: transformers' s3prl conversion script writes it,
    their downstream was trained with the released code's padding mask; also our default): the waveform is
    normalised over each utterance's valid samples (`do_normalize`), padded frames are zeroed before the positional
    convolution and masked as attention keys; the first GroupNorm of a "group" extractor still takes its statistics
    over the padded length (the model contract, as the released code and transformers with an attention mask);
  * `return_attention_mask: false` (the extractor's default when the key is absent): the extractor pads with zeros
    and normalises each padded row as a whole, and the model sees no mask; we do the same, so an utterance's
    logits depend on the padding, exactly as in transformers (batch utterances of similar length, or one at a time).
Without a `preprocessor_config.json` there is no normalisation and the padding mask is used.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wavlm.models.checkpoint import (
    CheckpointError,
    _atomic,
    _read_json,
    cfg_to_hf,
    hf_state_dict,
    read_hf_weights,
    state_mismatch,
)
from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.upstream import WavLMUpstream

log = logging.getLogger(__name__)

HF_ARCHITECTURE = "WavLMForAudioFrameClassification"
# Hugging Face name -> ours, of the weights outside the encoder (HF's encoder is under `wavlm.`, ours `upstream.model.`)
_HF_HEAD_KEYS = {"layer_weights": "featurizer.weights", "classifier.weight": "head.weight",
                 "classifier.bias": "head.bias"}


@dataclass
class FrameClassifierOutput:
    logits: Tensor  # [B, T, num_labels], before the sigmoid
    lengths: Tensor  # long [B] valid frames


class LastHiddenState(nn.Module):
    """The featurizer of a classifier without a weighted layer sum: the last hidden state."""

    def forward(self, hidden_states: Sequence[Tensor]) -> Tensor:
        return hidden_states[-1]


class FrameClassifier(nn.Module):
    """upstream -> featurizer (weighted layer sum or last hidden state) -> linear head, per frame.

    `attention_mask`: whether padded batches are run with the padding mask (see the module docstring).
    `labels`: the name of each output, in order.
    """

    def __init__(self, upstream: WavLMUpstream, num_labels: int, *, weighted_sum: bool = True,
                 attention_mask: bool = True, labels: Sequence[str] | None = None):
        super().__init__()
        if labels is not None and len(labels) != num_labels:
            raise ValueError(f"{len(labels)} labels {list(labels)} for {num_labels} outputs")
        self.upstream = upstream
        self.featurizer = WeightedLayerSum(upstream.num_states) if weighted_sum else LastHiddenState()
        self.head = nn.Linear(upstream.dim, num_labels)
        self.attention_mask = attention_mask
        self.labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(num_labels)]

    @property
    def num_labels(self) -> int:
        return self.head.out_features

    @property
    def frame_shift(self) -> int:
        """Samples per output frame."""
        return self.upstream.frame_shift

    def frames(self, samples: int) -> int:
        """Output frames of an utterance of `samples` samples."""
        return self.upstream.frames(samples)

    def forward(self, wav: Tensor, lengths: Tensor | None = None) -> FrameClassifierOutput:
        """wav float [B, S] 16 kHz; lengths long [B] samples (None: all S)."""
        if lengths is None or self.attention_mask:
            out = self.upstream(wav, lengths)
            frames = out.lengths
        else:  # as transformers' feature extractor without a mask: zero padding, the padded rows are the input
            lengths = lengths.to(wav.device)
            if (lengths > wav.shape[1]).any():
                raise ValueError(f"lengths {lengths.tolist()} exceed the padded length {wav.shape[1]}")
            valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
            out = self.upstream(wav * valid)
            frames = self.upstream.model.output_lengths(lengths).clamp(max=out.hidden_states[0].shape[1])
        return FrameClassifierOutput(self.head(self.featurizer(out.hidden_states)), frames)


def _hf_labels(config: dict[str, Any], where: str) -> list[str] | None:
    """config.json id2label in label order, or None when absent."""
    id2label = config.get("id2label")
    if not id2label:
        return None
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except (AttributeError, ValueError) as e:
        raise CheckpointError(f"{where}: malformed id2label {id2label!r}: {e}") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise CheckpointError(f"{where}: id2label ids {sorted(by_id)} are not 0..{len(by_id) - 1}")
    return [by_id[i] for i in range(len(by_id))]


def _load_hf(d: Path, trainable: bool) -> FrameClassifier:
    config = _read_json(d / "config.json")
    where = str(d / "config.json")
    archs = config.get("architectures") or []
    if HF_ARCHITECTURE not in archs:
        raise CheckpointError(f"{where}: architectures {archs} is not [{HF_ARCHITECTURE!r}]; load_frame_classifier "
                              f"reads frame classifiers only (wavlm.load_model reads the encoder of any WavLM dir)")
    pre = d / "preprocessor_config.json"
    # transformers' Wav2Vec2FeatureExtractor defaults to return_attention_mask=False
    attention_mask = bool(_read_json(pre).get("return_attention_mask", False)) if pre.is_file() else True
    labels = _hf_labels(config, where)
    weighted = bool(config.get("use_weighted_layer_sum", False))
    num_labels = len(labels) if labels else int(config.get("num_labels", 2))  # transformers' default: 2

    upstream = WavLMUpstream(str(d.resolve()), trainable=trainable)  # the encoder under `wavlm.`, do_normalize
    model = FrameClassifier(upstream, num_labels, weighted_sum=weighted, attention_mask=attention_mask, labels=labels)
    head_sd = {k: v for k, v in read_hf_weights(d).items() if not k.startswith("wavlm.")}
    own = model.state_dict()
    own = {hf: own[ours] for hf, ours in _HF_HEAD_KEYS.items() if ours in own}
    problems = state_mismatch(own, head_sd, against="config.json")
    if problems:
        raise CheckpointError(f"{d}: weights outside the encoder do not fit config.json: {problems}")
    model.load_state_dict({_HF_HEAD_KEYS[k]: v.float() for k, v in head_sd.items()}, strict=False)
    log.info("%s: %s, %d labels %s, %s, padded batches %s", d, HF_ARCHITECTURE, num_labels, model.labels,
             "weighted sum of all hidden states" if weighted else "last hidden state",
             "with the padding mask" if attention_mask else "without a mask (as the feature extractor)")
    return model.train(trainable)


def load_frame_classifier(path: str | os.PathLike, *, trainable: bool = False) -> FrameClassifier:
    """A frame classifier from a Hugging Face `WavLMForAudioFrameClassification` directory (config.json,
    model.safetensors or pytorch_model.bin, optional preprocessor_config.json). In eval mode with a frozen upstream
    unless `trainable`."""
    p = Path(path)
    if p.is_dir() and (p / "config.json").is_file():
        return _load_hf(p, trainable)
    raise CheckpointError(f"{p}: not a frame classifier; expected a Hugging Face {HF_ARCHITECTURE} directory "
                          f"(with config.json)")


def export_frame_classifier(model: FrameClassifier, out_dir: str | os.PathLike,
                            labels: Sequence[str] | None = None) -> None:
    """Write a Hugging Face `WavLMForAudioFrameClassification` directory (config.json, model.safetensors,
    preprocessor_config.json) that transformers loads with no missing or unexpected keys and that gives the same
    logits. `labels` (default: `model.labels`) become id2label/label2id."""
    from safetensors.torch import save_file

    if not isinstance(model.upstream, WavLMUpstream):
        raise CheckpointError(f"only a WavLM upstream exports to {HF_ARCHITECTURE}, not {type(model.upstream)}")
    if not isinstance(model.head, nn.Linear):
        raise CheckpointError(f"{HF_ARCHITECTURE} has a linear classifier; this head is {type(model.head)}")
    weighted = isinstance(model.featurizer, WeightedLayerSum)
    if weighted and model.featurizer.normalize:
        raise CheckpointError(f"{HF_ARCHITECTURE} sums the hidden states without normalising them; this featurizer "
                              f"layer-normalises each (normalize=True)")
    labels = list(labels if labels is not None else model.labels)
    if len(labels) != model.num_labels:
        raise ValueError(f"{len(labels)} labels {labels} for {model.num_labels} outputs")
    wavlm = model.upstream.model
    config = {
        **cfg_to_hf(wavlm.cfg),
        "architectures": [HF_ARCHITECTURE],
        "use_weighted_layer_sum": weighted,
        "num_labels": model.num_labels,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        # transformers 5.x: hidden_states[-1] = last_hidden_state (with a pre-LN encoder's final LayerNorm), the
        # state our weighted sum uses and transformers 4.x's meaning; 4.x ignores the key
        "tie_last_hidden_states": True,
    }
    pre = {
        "do_normalize": bool(wavlm.cfg.normalize),
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": bool(model.attention_mask),
        "sampling_rate": 16000,
    }
    sd = {f"wavlm.{k}": v for k, v in hf_state_dict(wavlm).items()}
    sd["classifier.weight"] = model.head.weight.detach().cpu().contiguous()
    sd["classifier.bias"] = model.head.bias.detach().cpu().contiguous()
    if weighted:
        sd["layer_weights"] = model.featurizer.weights.detach().cpu().contiguous()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / "model.safetensors", lambda tmp: save_file(sd, tmp, metadata={"format": "pt"}))
    for name, obj in (("config.json", config), ("preprocessor_config.json", pre)):
        text = json.dumps(obj, indent=2) + "\n"
        _atomic(out / name, lambda tmp, text=text: Path(tmp).write_text(text))
