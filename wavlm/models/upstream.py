"""Upstreams for the SUPERB protocol: a model whose hidden states feed a small task head, frozen by default.

    from wavlm.models.upstream import load_upstream
    up = load_upstream("/models/WavLM-Large.pt")     # any wavlm.load_model source, "fbank", or a transformers dir
    out = up(wav, lengths)                           # out.hidden_states: L+1 tensors [B, T, D]; out.lengths [B]

One interface for every upstream (s3prl's "upstream expert"):
  * WavLM from any `wavlm.load_model` source (Microsoft's .pt, a Hugging Face WavLM dir, a checkpoint of ours);
  * `fbank`: 80-dim Kaldi log-mel filterbanks (kaldi-native-fbank, 25 ms / 10 ms), one "hidden state", the
    baseline row of the SUPERB table. Not mean-normalised: s3prl's fbank baseline (s3prl/upstream/baseline/
    fbank.yaml) adds deltas and per-utterance mean/variance normalisation, which makes the mean-pooled linear SID
    head see a constant (every utterance's features average to zero: SUPERB's FBANK SID accuracy is ~0 %);
  * any other transformers speech SSL directory (HuBERT, wav2vec 2.0, data2vec audio) through transformers'
    AutoModel, with all its hidden states.

Frozen (the default, the SUPERB protocol): the upstream runs in eval mode (no dropout, no layerdrop) under
`torch.no_grad()`, its parameters have `requires_grad=False` and `train()` leaves it in eval mode, so its hidden
states are outside autograd (no graph is kept for them) and its weights cannot change. `trainable=True`
fine-tunes it instead (train mode, gradients).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from wavlm.models.checkpoint import CheckpointError, load_model
from wavlm.models.wavlm import WavLM

log = logging.getLogger(__name__)

FBANK = "fbank"


@dataclass
class UpstreamOutput:
    hidden_states: tuple[Tensor, ...]  # num_states tensors [B, T, D]
    lengths: Tensor  # long [B] valid frames


class Upstream(nn.Module):
    """Base class: subclasses set `num_states`, `dim`, `frame_shift` (samples per frame) and implement
    `extract(wav, lengths) -> UpstreamOutput`."""

    num_states: int
    dim: int
    frame_shift: int

    def __init__(self, spec: str, trainable: bool = False):
        super().__init__()
        self.spec, self.trainable = spec, trainable

    def freeze(self) -> None:
        """Freeze the upstream (after its weights are in place): no gradients, always eval mode."""
        if not self.trainable:
            for p in self.parameters():
                p.requires_grad_(False)
            super().train(False)

    def train(self, mode: bool = True) -> Upstream:
        return super().train(mode and self.trainable)

    def extract(self, wav: Tensor, lengths: Tensor) -> UpstreamOutput:
        raise NotImplementedError

    def frames(self, samples: int) -> int:
        """Output frames of an utterance of `samples` samples."""
        raise NotImplementedError

    def forward(self, wav: Tensor, lengths: Tensor | None = None) -> UpstreamOutput:
        """wav float [B, S] 16 kHz, lengths long [B] samples (None: all S)."""
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long, device=wav.device)
        if self.trainable:
            return self.extract(wav, lengths)
        with torch.no_grad():
            return self.extract(wav, lengths)

    def describe(self) -> str:
        return f"{self.spec} ({type(self).__name__}: {self.num_states} states of {self.dim} dims, " \
               f"{self.frame_shift / 16:.0f} ms frames, {'fine-tuned' if self.trainable else 'frozen'})"


class WavLMUpstream(Upstream):
    def __init__(self, spec: str, trainable: bool = False):
        super().__init__(spec, trainable)
        self.model: WavLM = load_model(spec, train=trainable)
        self.num_states, self.dim = self.model.num_layers + 1, self.model.embed_dim
        self.frame_shift = self.model.frame_shift
        self.model.mask_emb.requires_grad_(False)  # never masks: a parameter without gradient under DDP
        self.freeze()

    def extract(self, wav: Tensor, lengths: Tensor) -> UpstreamOutput:
        out = self.model.extract_features(wav, lengths)
        return UpstreamOutput(out.hidden_states, out.lengths)

    def frames(self, samples: int) -> int:
        return int(self.model.output_lengths(torch.tensor([samples]))[0])


class FbankUpstream(Upstream):
    """Kaldi filterbanks of each utterance (its valid samples only), zero-padded to the batch's longest."""

    def __init__(self, spec: str = FBANK, num_bins: int = 80):
        super().__init__(spec, trainable=False)
        self.num_states, self.dim, self.frame_shift = 1, num_bins, 160

    def frames(self, samples: int) -> int:  # Kaldi's snip_edges: whole 400-sample windows every 160
        return 0 if samples < 400 else 1 + (samples - 400) // 160

    def extract(self, wav: Tensor, lengths: Tensor) -> UpstreamOutput:
        from wavlm.features.fbank import compute_fbank

        audio = wav.detach().float().cpu().numpy()
        feats = [compute_fbank(audio[i, :n], self.dim, cmn=False) for i, n in enumerate(lengths.tolist())]
        frames = [len(f) for f in feats]
        if min(frames) < 1:
            raise ValueError(f"utterance(s) shorter than one 25 ms filterbank window: lengths {lengths.tolist()}")
        out = np.zeros((len(feats), max(frames), self.dim), dtype=np.float32)
        for i, f in enumerate(feats):
            out[i, : len(f)] = f
        return UpstreamOutput((torch.from_numpy(out).to(wav.device),), torch.tensor(frames, device=wav.device))


class TransformersUpstream(Upstream):
    """A transformers speech SSL directory (HuBERT, wav2vec 2.0, ...): all hidden states, with transformers
    4.x's meaning of the last one (the final LayerNorm of pre-LN models applied, as for our WavLM)."""

    def __init__(self, spec: str, trainable: bool = False):
        from transformers import AutoModel

        super().__init__(spec, trainable)
        d = Path(spec)
        self.model = AutoModel.from_pretrained(d, local_files_only=True)
        cfg = self.model.config
        self.num_states, self.dim = cfg.num_hidden_layers + 1, cfg.hidden_size
        self.frame_shift = int(np.prod(cfg.conv_stride))
        pre = d / "preprocessor_config.json"
        self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", False)) if pre.is_file() else False
        self.freeze()

    def extract(self, wav: Tensor, lengths: Tensor) -> UpstreamOutput:
        valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
        wav = wav * valid
        if self.normalize:  # per utterance over its valid samples, as the feature extractor does
            n = lengths.to(wav.dtype)[:, None]
            mean = wav.sum(-1, keepdim=True) / n
            var = ((wav - mean) * valid).pow(2).sum(-1, keepdim=True) / n
            wav = (wav - mean) / torch.sqrt(var + 1e-7) * valid
        out = self.model(wav, attention_mask=valid.long(), output_hidden_states=True)
        frames = self.model._get_feat_extract_output_lengths(lengths).long()
        states = tuple(out.hidden_states[:-1]) + (out.last_hidden_state,)
        return UpstreamOutput(states, frames)

    def frames(self, samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(torch.tensor([samples]))[0])


def load_upstream(spec: str, trainable: bool = False) -> Upstream:
    """`fbank`, a transformers speech SSL directory whose config.json is not a WavLM, or anything
    `wavlm.load_model` reads (Microsoft's .pt, a Hugging Face WavLM dir, a checkpoint of ours)."""
    if spec == FBANK:
        if trainable:
            raise ValueError("the fbank upstream has no parameters to fine-tune")
        return FbankUpstream()
    p = Path(spec)
    if not p.exists():
        raise CheckpointError(f"upstream {spec}: no such file or directory (give a WavLM checkpoint, a Hugging "
                              f"Face model directory or {FBANK!r})")
    spec = str(p.resolve())  # checkpoints of the task store it: absolute, so evaluation finds it from anywhere
    if p.is_dir() and (p / "config.json").is_file():
        try:
            model_type = json.loads((p / "config.json").read_text()).get("model_type")
        except ValueError as e:
            raise CheckpointError(f"{p / 'config.json'}: cannot read JSON: {e}") from None
        if model_type != "wavlm":
            return TransformersUpstream(spec, trainable)
    return WavLMUpstream(spec, trainable)
