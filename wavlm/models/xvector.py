"""The x-vector head of a Hugging Face `WavLMForXVector` directory, on top of our encoder.

Speaker verification with a released x-vector model (microsoft/wavlm-base-plus-sv and the like):

    from wavlm.models.xvector import embed, load_xvector
    encoder, head = load_xvector("wavlm-base-plus-sv/")
    emb = embed(encoder, head, wav, lengths)          # [B, xvector_output_dim]
    score = torch.nn.functional.cosine_similarity(emb_a, emb_b)

`emb` is what `WavLMForXVector(...).embeddings` holds for the same input. The head:

    hidden states -> (softmax-weighted sum of all L+1, or the last one) -> projector (Linear)
      -> TDNN layers (Linear over k frames spaced `dilation` apart, ReLU; no padding, so each layer
         drops dilation*(k-1) frames) -> statistics pooling (mean ++ std over frames)
      -> feature_extractor (Linear) = the x-vector embedding
      -> classifier (Linear) = logits, trained with the additive-margin softmax `objective.weight`

Conventions of Hugging Face's implementation reproduced here (they decide the numbers):
  * the standard deviation is the unbiased one (divides by n - 1);
  * without lengths every TDNN output frame is pooled; with lengths, utterance i pools the first
    n_i = frames_i - sum(kernel - 1) TDNN frames (`_get_tdnn_output_lengths`), which ignores the
    dilation, so n_i is larger than the number of TDNN frames that saw only valid input (by
    sum((dilation - 1) * (kernel - 1)), 6 frames for the released config): the last pooled frames of a
    padded utterance read encoder outputs at padded positions. `exact_lengths=True` pools only the
    frames whose receptive field is inside the utterance instead (not Hugging Face's numbers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavlm.models.checkpoint import CheckpointError, load_model, read_hf_weights, state_mismatch
from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.wavlm import WavLM

# Hugging Face key -> our key, for the keys whose names differ.
_HF_TO_OURS = {"layer_weights": "layer_sum.weights"}
_OURS_TO_HF = {v: k for k, v in _HF_TO_OURS.items()}


@dataclass(frozen=True)
class XVectorConfig:
    """The fields of a Hugging Face `WavLMConfig` that shape the x-vector head."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    use_weighted_layer_sum: bool = False
    tdnn_dim: tuple[int, ...] = (512, 512, 512, 512, 1500)
    tdnn_kernel: tuple[int, ...] = (5, 3, 3, 1, 1)
    tdnn_dilation: tuple[int, ...] = (1, 2, 3, 1, 1)
    xvector_output_dim: int = 512
    num_labels: int = 2

    def __post_init__(self) -> None:
        n = len(self.tdnn_dim)
        if n == 0:
            raise ValueError("tdnn_dim is empty")
        if len(self.tdnn_kernel) != n or len(self.tdnn_dilation) != n:
            raise ValueError(
                f"tdnn_dim, tdnn_kernel and tdnn_dilation differ in length "
                f"({n}, {len(self.tdnn_kernel)}, {len(self.tdnn_dilation)})"
            )
        if min(self.tdnn_kernel) < 1 or min(self.tdnn_dilation) < 1 or min(self.tdnn_dim) < 1:
            raise ValueError("tdnn_dim, tdnn_kernel and tdnn_dilation must be positive")

    @classmethod
    def from_hf(cls, config: dict[str, Any], where: str = "config.json") -> XVectorConfig:
        """From a Hugging Face config.json dict (missing fields take transformers' defaults).

        `classifier_proj_size` belongs to WavLMForSequenceClassification and plays no part here.
        """
        d = cls()

        def ints(key: str, default: tuple[int, ...]) -> tuple[int, ...]:
            v = config.get(key, default)
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, int) for x in v):
                raise CheckpointError(f"{where}: {key} must be a list of integers, got {v!r}")
            return tuple(v)

        num_labels = config.get("num_labels")
        if num_labels is None:
            num_labels = len(config["id2label"]) if config.get("id2label") else d.num_labels
        try:
            return cls(
                hidden_size=int(config.get("hidden_size", d.hidden_size)),
                num_hidden_layers=int(config.get("num_hidden_layers", d.num_hidden_layers)),
                use_weighted_layer_sum=bool(config.get("use_weighted_layer_sum", d.use_weighted_layer_sum)),
                tdnn_dim=ints("tdnn_dim", d.tdnn_dim),
                tdnn_kernel=ints("tdnn_kernel", d.tdnn_kernel),
                tdnn_dilation=ints("tdnn_dilation", d.tdnn_dilation),
                xvector_output_dim=int(config.get("xvector_output_dim", d.xvector_output_dim)),
                num_labels=int(num_labels),
            )
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: bad x-vector config: {e}") from None


class TDNNLayer(nn.Module):
    """ReLU(Linear(concat of k frames t, t+d, ..., t+(k-1)d)); no padding ("valid" convolution).

    `kernel.weight` is [out, k * in] with the frame index major, as Hugging Face's `tdnn.N.kernel`.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int, dilation: int):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.kernel_size, self.dilation = kernel, dilation
        self.kernel = nn.Linear(in_dim * kernel, out_dim)

    @property
    def span(self) -> int:
        """Input frames one output frame depends on."""
        return self.dilation * (self.kernel_size - 1) + 1

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, in] -> [B, T - span + 1, out]."""
        t_out = x.shape[1] - self.span + 1
        if t_out < 1:
            raise ValueError(f"TDNN layer needs at least {self.span} frames, got {x.shape[1]}")
        if self.kernel_size == 1:
            frames = x
        else:
            starts = range(0, self.kernel_size * self.dilation, self.dilation)
            frames = torch.cat([x[:, s : s + t_out] for s in starts], dim=-1)
        return F.relu(self.kernel(frames))


class AMSoftmax(nn.Module):
    """Additive-margin softmax loss over cosine logits; `weight` [embed_dim, num_labels] (HF layout).

    Hugging Face applies it to the classifier output (`logits`), not to the embedding.
    """

    def __init__(self, dim: int, num_labels: int, scale: float = 30.0, margin: float = 0.4):
        super().__init__()
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.randn(dim, num_labels))

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        cos = F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)
        target = F.one_hot(labels.flatten(), cos.shape[1]).bool()
        return F.cross_entropy(self.scale * torch.where(target, cos - self.margin, cos), labels.flatten())


@dataclass
class XVectorOutput:
    """embeddings [B, xvector_output_dim] (score these); logits [B, xvector_output_dim]; frames [B]
    TDNN frames pooled per utterance."""

    embeddings: Tensor
    logits: Tensor
    frames: Tensor


class XVectorHead(nn.Module):
    """The head of Hugging Face `WavLMForXVector`; parameter names follow it (see module docstring)."""

    def __init__(self, cfg: XVectorConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.use_weighted_layer_sum:
            self.layer_sum = WeightedLayerSum(cfg.num_hidden_layers + 1)
        self.projector = nn.Linear(cfg.hidden_size, cfg.tdnn_dim[0])
        dims = (cfg.tdnn_dim[0],) + tuple(cfg.tdnn_dim)
        self.tdnn = nn.ModuleList(
            TDNNLayer(dims[i], dims[i + 1], cfg.tdnn_kernel[i], cfg.tdnn_dilation[i])
            for i in range(len(cfg.tdnn_dim))
        )
        self.feature_extractor = nn.Linear(2 * cfg.tdnn_dim[-1], cfg.xvector_output_dim)
        self.classifier = nn.Linear(cfg.xvector_output_dim, cfg.xvector_output_dim)
        self.objective = AMSoftmax(cfg.xvector_output_dim, cfg.num_labels)

    def tdnn_lengths(self, frames: Tensor, exact: bool = False) -> Tensor:
        """TDNN frames pooled for `frames` encoder frames: Hugging Face's count (kernel - 1 per layer,
        dilation ignored) or, with `exact`, the frames whose receptive field lies inside the input."""
        drop = sum((layer.span if exact else layer.kernel_size) - 1 for layer in self.tdnn)
        return frames - drop

    def forward(
        self, hidden_states: Sequence[Tensor], frames: Tensor | None = None, exact_lengths: bool = False
    ) -> XVectorOutput:
        """hidden_states: the encoder's L+1 states [B, T, D]; frames: long [B] valid encoder frames
        (None: all T, as Hugging Face without attention_mask)."""
        if self.cfg.use_weighted_layer_sum:
            x = self.layer_sum(hidden_states)
        else:
            x = hidden_states[-1]
        x = self.projector(x)
        for layer in self.tdnn:
            x = layer(x)
        b, t = x.shape[:2]
        if frames is None:
            n = torch.full((b,), t, dtype=torch.long, device=x.device)
        else:
            n = self.tdnn_lengths(frames.to(device=x.device, dtype=torch.long), exact_lengths).clamp(max=t)
        if (n < 2).any():
            raise ValueError(
                f"utterance(s) too short for the x-vector TDNN (need at least 2 frames after it to "
                f"pool a standard deviation): TDNN frames {n.tolist()}"
            )
        mean, std = _masked_mean_std(x, n)
        embeddings = self.feature_extractor(torch.cat([mean, std], dim=-1))
        return XVectorOutput(embeddings=embeddings, logits=self.classifier(embeddings), frames=n)

    def hf_state_dict(self) -> dict[str, Tensor]:
        """Weights under Hugging Face `WavLMForXVector` names (without the `wavlm.` encoder)."""
        return {_OURS_TO_HF.get(k, k): v for k, v in self.state_dict().items()}


def _masked_mean_std(x: Tensor, n: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased standard deviation over the first n[b] frames of x [B, T, C]."""
    valid = (torch.arange(x.shape[1], device=x.device)[None, :] < n[:, None]).unsqueeze(-1)
    count = n.to(x.dtype)[:, None]
    mean = x.masked_fill(~valid, 0.0).sum(1) / count
    dev = (x - mean[:, None, :]).masked_fill(~valid, 0.0)
    var = dev.pow(2).sum(1) / (count - 1)
    return mean, var.sqrt()


def load_head(
    d: str | os.PathLike, sd: dict[str, Tensor] | None = None, *, weights_only: bool = True
) -> XVectorHead:
    """The x-vector head of a Hugging Face `WavLMForXVector` directory (strict: names missing and
    unexpected head keys). `sd`: the directory's weights when already read."""
    d = Path(d)
    if not (d / "config.json").is_file():
        raise CheckpointError(f"{d}: not a Hugging Face model directory (no config.json)")
    try:
        config = json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{d / 'config.json'}: cannot read JSON: {e}") from None
    if sd is None:
        sd = read_hf_weights(d, weights_only=weights_only)
    head_sd = {k: v for k, v in sd.items() if not k.startswith("wavlm.")}
    if not any(k.startswith("tdnn.") for k in head_sd):
        found = sorted({k.split(".")[0] for k in head_sd}) or "none"
        raise CheckpointError(
            f"{d}: not a WavLMForXVector directory: no 'tdnn.*' weights "
            f"(architectures {config.get('architectures')}; head parameters: {found})"
        )
    head = XVectorHead(XVectorConfig.from_hf(config, where=str(d / "config.json")))
    ours = {_HF_TO_OURS.get(k, k): v for k, v in head_sd.items()}
    problems = state_mismatch(head.state_dict(), ours, name=lambda k: _OURS_TO_HF.get(k, k), keys="head keys",
                              against="config")
    if problems:
        raise CheckpointError(f"{d}: x-vector head does not fit config.json: {problems}")
    head.load_state_dict({k: v.float() for k, v in ours.items()})
    return head.eval()


def load_xvector(
    path: str | os.PathLike, *, weights_only: bool = True, map_location: str | torch.device = "cpu"
) -> tuple[WavLM, XVectorHead]:
    """(our WavLM encoder, its x-vector head) from a Hugging Face `WavLMForXVector` directory, both
    in eval mode on `map_location`."""
    d = Path(path)
    if not d.is_dir():
        raise CheckpointError(f"{d}: expected a Hugging Face WavLMForXVector directory")
    head = load_head(d, weights_only=weights_only)  # checks the head first: fails fast on other dirs
    encoder = load_model(d, weights_only=weights_only, map_location=map_location)
    if encoder.embed_dim != head.cfg.hidden_size or encoder.num_layers != head.cfg.num_hidden_layers:
        raise CheckpointError(f"{d}: encoder and x-vector head disagree on hidden size or layer count")
    return encoder, head.to(map_location)


def embed(
    encoder: WavLM,
    head: XVectorHead,
    wav: Tensor,
    lengths: Tensor | None = None,
    *,
    exact_lengths: bool = False,
) -> Tensor:
    """x-vector embeddings [B, xvector_output_dim] of wav [B, S] (16 kHz), lengths long [B] samples
    (None: all S); equal to Hugging Face's `WavLMForXVector(wav, attention_mask).embeddings`."""
    out = encoder.extract_features(wav, lengths)
    frames = None if out.padding_mask is None else out.lengths
    return head(out.hidden_states, frames, exact_lengths=exact_lengths).embeddings
