"""WavLM encoder (Chen et al., 2022), readable top to bottom.

    config -> CNN feature encoder -> LayerNorm + projection -> (span masking) -> positional conv
           -> Transformer layers with gated relative position bias -> hidden states

Parameter names are those of Microsoft's released code (unilm/WavLM), so `model.state_dict()` is a
released checkpoint's `'model'` dict and `WavLMConfig.to_official()` is its `'cfg'`.

Numerics follow the released checkpoints (and Hugging Face's `WavLMModel`, which reproduces them):

* the relative position bias is computed once, by layer 0's `relative_attention_bias` (buckets of key
  minus query position), and passed to every layer, which scales each query row by a gate computed
  from that layer's attention input (`grep_linear`, `grep_a`);
* padded frames are zeroed before the positional convolution and masked as attention keys; the
  first GroupNorm of the "default" extractor takes its statistics over the padded length;
* frame counts follow the convolution length formula.

Where we spend less than the reference implementations (bench/bench_inference.py measures it):

* the bias values are computed once per forward ([H, 2T-1]); with the keys numbered backwards every
  layer's [H, T, T] bias is a strided view of them, gated row by row into the scores;
* on the CPU, linear layers and both attention products run on oneDNN (see `Linear`), attention
  head by head for T >= 256 frames with padded keys left out rather than masked; elsewhere the gated
  bias goes to `scaled_dot_product_attention` as an additive mask built in one reused buffer;
* at inference the CNN runs over short blocks of output frames (cache-resident activations), the
  first GroupNorm's statistics computed beforehand in closed form (`first_norm_stats`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

DEFAULT_CONV_LAYERS = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"

# Defaults of the released code's WavLMConfig: a released cfg that omits a key means these values.
OFFICIAL_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default",
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "conv_feature_layers": DEFAULT_CONV_LAYERS,
    "conv_bias": False,
    "feature_grad_mult": 1.0,
    "normalize": False,
    "dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "dropout_features": 0.0,
    "mask_length": 10,
    "mask_prob": 0.65,
    "mask_selection": "static",
    "mask_other": 0.0,
    "no_mask_overlap": False,
    "mask_min_space": 1,
    "mask_channel_length": 10,
    "mask_channel_prob": 0.0,
    "mask_channel_selection": "static",
    "mask_channel_other": 0.0,
    "no_mask_channel_overlap": False,
    "mask_channel_min_space": 1,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
}


class ConfigError(ValueError):
    """A model configuration that is malformed or names an unknown option."""


@dataclass
class WavLMConfig:
    """Model hyper-parameters, named as in the released code's cfg (defaults: WavLM Base+)."""

    extractor_mode: str = "default"  # "default": GroupNorm on the first conv only; "layer_norm": LN on all
    conv_feature_layers: str = DEFAULT_CONV_LAYERS  # [(channels, kernel, stride), ...] as in fairseq
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False  # False: post-LN (Base); True: pre-LN + final LayerNorm (Large)
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True
    normalize: bool = False  # zero-mean unit-variance waveform per utterance before the CNN
    normalize_eps: float = 1e-5  # 1e-5: F.layer_norm as the released code; 1e-7: HF feature extractor
    layer_norm_eps: float = 1e-5
    feature_grad_mult: float = 1.0
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    dropout_features: float = 0.0
    mask_prob: float = 0.65
    mask_length: int = 10
    mask_selection: str = "static"
    mask_other: float = 0.0
    no_mask_overlap: bool = False
    mask_min_space: int = 1
    mask_channel_prob: float = 0.0
    mask_channel_length: int = 10
    mask_channel_selection: str = "static"
    mask_channel_other: float = 0.0
    no_mask_channel_overlap: bool = False
    mask_channel_min_space: int = 1
    required_seq_len_multiple: int = 1  # accepted for fairseq compatibility; unused

    def __post_init__(self) -> None:
        if isinstance(self.conv_feature_layers, (list, tuple)):
            self.conv_feature_layers = str(
                [tuple(int(v) for v in layer) for layer in self.conv_feature_layers]
            )
        self.conv_layers()  # validates
        if self.extractor_mode not in ("default", "layer_norm"):
            raise ConfigError(
                f"extractor_mode must be 'default' or 'layer_norm', got {self.extractor_mode!r}"
            )
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ConfigError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.activation_fn not in ACTIVATIONS:
            raise ConfigError(f"activation_fn {self.activation_fn!r} not one of {sorted(ACTIVATIONS)}")
        if self.mask_selection != "static" or self.mask_channel_selection != "static":
            raise ConfigError("only mask_selection/mask_channel_selection 'static' are implemented")

    def conv_layers(self) -> list[tuple[int, int, int]]:
        """The CNN layers as (channels, kernel, stride)."""
        try:
            layers = _eval_layer_spec(self.conv_feature_layers)
            layers = [tuple(int(v) for v in layer) for layer in layers]
            if not layers or any(len(layer) != 3 for layer in layers):
                raise ValueError("expected a non-empty list of (dim, kernel, stride)")
        except (ValueError, TypeError, SyntaxError) as e:
            raise ConfigError(f"bad conv_feature_layers {self.conv_feature_layers!r}: {e}") from None
        return layers  # type: ignore[return-value]

    @property
    def head_dim(self) -> int:
        return self.encoder_embed_dim // self.encoder_attention_heads

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WavLMConfig:
        """Strict: unknown keys are an error (our YAML configs)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown model config key(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_official(cls, cfg: dict[str, Any]) -> WavLMConfig:
        """Lenient: a released checkpoint's cfg; unknown keys ignored, missing ones take the
        released code's defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {**OFFICIAL_DEFAULTS, **{k: v for k, v in cfg.items() if k in names}}
        ignored = sorted(set(cfg) - names)
        if ignored:
            logger.debug("ignoring cfg keys %s", ignored)
        return cls(**{k: v for k, v in merged.items() if k in names})

    def to_official(self) -> dict[str, Any]:
        """A cfg dict the released code's WavLMConfig accepts (plus our few extra keys)."""
        return dataclasses.asdict(self)


def _eval_layer_spec(spec: str | Sequence) -> list:
    """Evaluate fairseq's `conv_feature_layers` string ("[(512,10,5)] + [(512,3,2)] * 4") safely."""
    if not isinstance(spec, str):
        return list(spec)

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError(f"unsupported expression {ast.dump(node)[:60]}")

    out = ev(ast.parse(spec.strip(), mode="eval"))
    if not isinstance(out, list):
        raise ValueError("not a list")
    return out


def _gelu_accurate(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_accurate": _gelu_accurate, "gelu_fast": _gelu_accurate}


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------
@dataclass
class WavLMOutput:
    """What `extract_features` returns.

    hidden_states: L+1 tensors [B, T, D] (transformers 4.x `output_hidden_states` meaning): [0] is the
        encoder input (after positional conv, and after the encoder LayerNorm for post-LN models);
        [i] the output of layer i; the last one carries the final LayerNorm for pre-LN models.
        Fewer when `num_layers` stopped early.
    lengths: long [B] valid frames.
    padding_mask: bool [B, T], True on padded frames (None when nothing is padded).
    """

    hidden_states: tuple[Tensor, ...]
    lengths: Tensor
    padding_mask: Tensor | None = None

    @property
    def last_hidden_state(self) -> Tensor:
        return self.hidden_states[-1]


@dataclass
class WavLMForwardOutput:
    """What `forward` returns (for pre-training losses).

    conv_features: [B, T, C] CNN output before the feature LayerNorm (for a feature penalty).
    features: [B, T, D] projected features before masking (dropout_features applied).
    encoder_input: [B, T, D] what went into the encoder (masked when masking was on).
    mask_indices: bool [B, T] masked frames, or None.
    padding_mask: bool [B, T] padded frames, or None.
    hidden_states: as in `WavLMOutput`; hidden_states[-1] is the encoder output.
    """

    conv_features: Tensor
    features: Tensor
    encoder_input: Tensor
    mask_indices: Tensor | None
    padding_mask: Tensor | None
    lengths: Tensor
    hidden_states: tuple[Tensor, ...] = field(default_factory=tuple)

    @property
    def last_hidden_state(self) -> Tensor:
        return self.hidden_states[-1]


def profile_scope(name: str) -> torch.profiler.record_function:
    """A named range `wavlm.<name>` in torch.profiler traces: cnn, pos_conv, bias_gate, attention, ffn
    (bench/bench_inference.py splits a forward's time by them; a few microseconds each otherwise)."""
    return torch.profiler.record_function(f"wavlm.{name}")


# --------------------------------------------------------------------------------------------------
# Linear layers
# --------------------------------------------------------------------------------------------------
@functools.cache
def onednn_linear_available() -> bool:
    """Whether oneDNN's inner product (`torch.ops.mkldnn._linear_pointwise`) runs here and agrees with
    F.linear (checked once per process on a small case)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*shape, generator=g) for shape in ((3, 5, 16), (8, 16), (8,)))
        with torch.no_grad():
            y = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none")
            return bool(torch.allclose(y, F.gelu(F.linear(x, w, b)), atol=1e-5))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


class Linear(nn.Linear):
    """nn.Linear (same parameters, same state_dict keys) whose CPU fp32 inference runs on oneDNN.

    Why not F.linear: on CPU it calls MKL's sgemm, which on AMD processors takes a code path about half
    as fast as oneDNN's inner product for the encoder's shapes (measured on a 2-core EPYC with AVX-512:
    150-175 vs 300-400 GF/s; on Intel processors the two are close). oneDNN's op is the one PyTorch's own
    CPU compiler backend (inductor) substitutes for linear layers; it also fuses the exact GELU of the
    feed-forward block. Training (autograd), other devices and dtypes, and tracing (ONNX export) take
    F.linear, and so does everything with `torch.backends.mkldnn.enabled = False` or under CPU autocast.
    """

    def onednn(self, x: Tensor) -> bool:
        """Whether a call on `x` takes the oneDNN path."""
        return (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()
            and torch.backends.mkldnn.enabled
            and onednn_linear_available()
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.onednn(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def gelu(self, x: Tensor) -> Tensor:
        """gelu(self(x)) (exact GELU), fused on the oneDNN path and in place on the others when no
        gradient is needed."""
        if self.onednn(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none")
        y = F.linear(x, self.weight, self.bias)
        return torch.ops.aten.gelu_(y) if not (torch.is_grad_enabled() and y.requires_grad) else F.gelu(y)


# --------------------------------------------------------------------------------------------------
# CNN feature encoder
# --------------------------------------------------------------------------------------------------
class ConvBlock(nn.Sequential):
    """One CNN layer. Parameter names as fairseq: `0` conv, `2` GroupNorm or `2.1` LayerNorm.

    Works in [B, C, T] layout. A first layer with one input channel runs as a single GEMM over the
    unfolded samples (much faster than a 1-channel convolution); the others use the library
    convolution (oneDNN beats an unfold + GEMM there). GroupNorm and GELU run in place at inference.
    """

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, bias: bool, norm: str | None):
        mods: list[nn.Module] = [nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=bias), nn.Identity()]
        if norm == "group":
            mods.append(nn.GroupNorm(n_out, n_out, affine=True))
        elif norm == "layer":  # fairseq: Sequential(TransposeLast, LayerNorm, TransposeLast) -> "2.1.*"
            mods.append(nn.Sequential(nn.Identity(), nn.LayerNorm(n_out, elementwise_affine=True)))
        super().__init__(*mods)
        self.kernel, self.stride, self.norm = kernel, stride, norm

    def conv(self, x: Tensor) -> Tensor:
        """The convolution alone: [B, C_in, T] -> [B, C_out, T']."""
        conv: nn.Conv1d = self[0]  # type: ignore[assignment]
        if x.shape[-1] < self.kernel:
            raise ValueError(f"input of {x.shape[-1]} frames is shorter than the conv kernel {self.kernel}")
        if x.shape[1] == 1:
            frames = x[:, 0].unfold(-1, self.kernel, self.stride)  # [B, T', K] (a view)
            frames_t = frames.transpose(1, 2).contiguous()  # [B, K, T'], small
            w = conv.weight[:, 0]
            y = torch.bmm(w.expand(frames_t.shape[0], *w.shape), frames_t)  # [B, C_out, T']
            if conv.bias is not None:
                y = y + conv.bias[:, None]
        else:
            y = conv(x)
        return y

    def forward(self, x: Tensor, norm_stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """x: [B, C_in, T] -> [B, C_out, T']. `norm_stats` (mean, var) [B, C, 1] replace the GroupNorm's
        own statistics (used to process windows of a long recording with its global statistics)."""
        y = self.conv(x)
        inplace = not (torch.is_grad_enabled() and y.requires_grad)
        if self.norm == "group" and norm_stats is not None:
            gn = self[2]
            mean, var = (t.to(y.dtype) for t in norm_stats)
            scale = torch.rsqrt(var + gn.eps) * gn.weight[:, None]
            y = y.sub_(mean).mul_(scale).add_(gn.bias[:, None]) if inplace else (y - mean) * scale + gn.bias[:, None]
        elif self.norm == "group":
            gn = self[2]
            if inplace and gn.num_groups == y.shape[1] and y.is_contiguous():
                # one group per channel: statistics over time, over the whole padded length
                # (two passes in place: mean, then the norm of the centred values; no temporaries)
                y = y.sub_(y.mean(dim=-1, keepdim=True))
                var = torch.linalg.vector_norm(y, dim=-1, keepdim=True).square_().div_(y.shape[-1])
                y = y.mul_(torch.rsqrt(var + gn.eps) * gn.weight[:, None]).add_(gn.bias[:, None])
            else:
                y = F.group_norm(y, gn.num_groups, gn.weight, gn.bias, gn.eps)
        elif self.norm == "layer":
            ln: nn.LayerNorm = self[2][1]  # type: ignore[index]
            y = F.layer_norm(y.transpose(1, 2), ln.normalized_shape, ln.weight, ln.bias, ln.eps).transpose(
                1, 2
            )
        return torch.ops.aten.gelu_(y) if inplace and y.is_contiguous() else F.gelu(y)


class FeatureExtractor(nn.Module):
    """The CNN: waveform [B, S] -> features [B, T, C] (C = 512 for the released models)."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        blocks = []
        n_in = 1
        for i, (dim, k, s) in enumerate(cfg.conv_layers()):
            norm = "layer" if cfg.extractor_mode == "layer_norm" else ("group" if i == 0 else None)
            blocks.append(ConvBlock(n_in, dim, k, s, cfg.conv_bias, norm))
            n_in = dim
        self.conv_layers = nn.ModuleList(blocks)
        spec = [(0, blk.kernel, blk.stride) for blk in blocks]
        self.hop, self.span = int(np.prod([blk.stride for blk in blocks])), receptive_field(spec)

        # At inference the whole CNN runs over blocks of about this many output frames (summed over the
        # batch), each block from its own stretch of samples (exact: convolutions are local, and the first
        # GroupNorm takes its statistics from `first_norm_stats` beforehand). On the CPU a block's
        # activations stay in the processor's cache and under the allocator's mmap threshold, instead of
        # 512-channel maps of the whole input (260 MB for 4 x 10 s) being allocated, page-faulted in and
        # written to memory layer by layer; 2 % of the first layers' frames are computed twice (the
        # overlap of neighbouring blocks). Accelerators take blocks `accel_block_factor` times larger
        # (there the blocks only bound the memory of long inputs).
        self.block_frames = 96
        self.accel_block_factor = 128

    @torch.no_grad()
    def first_norm_stats(self, wav: Tensor, block_samples: int = 160000 * 6) -> tuple[Tensor, Tensor] | None:
        """Per-channel (mean, var) [B, C, 1] of the first layer's conv output over the whole waveform
        [B, S] (or [S]: [1, C, 1]), the statistics its GroupNorm takes; None when there is no GroupNorm.

        The first convolution is linear in the samples, y_c(t) = w_c . f_t + b_c over frames f_t of
        `kernel` samples, so mean_c = w_c . m + b_c and var_c = w_c' S w_c from the frames' mean m and
        covariance S (kernel x kernel, accumulated in float64 over blocks of `block_samples`): exact,
        a few flops per sample, and no [C, T] map is needed.
        """
        first: ConvBlock = self.conv_layers[0]  # type: ignore[assignment]
        if first.norm != "group":
            return None
        conv: nn.Conv1d = first[0]  # type: ignore[assignment]
        wav = wav.reshape(1, -1) if wav.dim() == 1 else wav
        k, s = first.kernel, first.stride
        n_frames = (wav.shape[-1] - k) // s + 1
        if n_frames < 1:
            raise ValueError(f"input of {wav.shape[-1]} samples is shorter than the conv kernel {k}")
        step = max(1, block_samples // s)
        acc = torch.float32 if wav.device.type == "mps" else torch.float64  # MPS has no float64
        total = torch.zeros(wav.shape[0], k, dtype=acc, device=wav.device)
        outer = torch.zeros(wav.shape[0], k, k, dtype=acc, device=wav.device)
        for f0 in range(0, n_frames, step):
            f1 = min(n_frames, f0 + step)
            frames = wav[:, f0 * s : (f1 - 1) * s + k].unfold(-1, k, s).to(acc)  # [B, n, k]
            total += frames.sum(1)
            outer += frames.transpose(1, 2) @ frames
        m = total / n_frames
        cov = outer / n_frames - m[:, :, None] * m[:, None, :]
        w = conv.weight[:, 0].to(acc)  # [C, k]
        mean = m @ w.t()
        if conv.bias is not None:
            mean = mean + conv.bias.to(acc)
        var = torch.einsum("ck,bkl,cl->bc", w, cov, w).clamp_(min=0.0)
        return mean[:, :, None].to(wav.dtype), var[:, :, None].to(wav.dtype)

    def forward(self, wav: Tensor, norm_stats: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """wav [B, S] -> [B, T, C]. `norm_stats` replace the first GroupNorm's statistics (see
        `first_norm_stats`; default: those of `wav` itself)."""
        first = self.conv_layers[0]
        if torch.is_grad_enabled():  # training: whole length, for autograd
            x = first(wav.unsqueeze(1), norm_stats)
            for block in self.conv_layers[1:]:
                x = block(x)
            return x.transpose(1, 2)
        if first.norm == "group" and norm_stats is None:
            norm_stats = self.first_norm_stats(wav)
        b = wav.shape[0]
        n_out = (wav.shape[-1] - self.span) // self.hop + 1
        if n_out < 1:
            raise ValueError(f"input of {wav.shape[-1]} samples is shorter than the receptive field {self.span}")
        block = self.block_frames * (1 if wav.device.type == "cpu" else self.accel_block_factor)
        rows = max(1, block // b)
        out = None
        for f0 in range(0, n_out, rows):
            f1 = min(n_out, f0 + rows)
            y = first(wav[:, f0 * self.hop : (f1 - 1) * self.hop + self.span].unsqueeze(1), norm_stats)
            for block in self.conv_layers[1:]:
                y = block(y)
            if out is None:
                out = torch.empty(b, n_out, y.shape[1], dtype=y.dtype, device=y.device)
            out[:, f0:f1] = y.transpose(1, 2)
        assert out is not None
        return out


def conv_output_lengths(lengths: Tensor, conv_layers: Sequence[tuple[int, int, int]]) -> Tensor:
    """Frames produced from `lengths` samples (the conv length formula, floor((L - k) / s) + 1)."""
    for _, k, s in conv_layers:
        lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


def receptive_field(conv_layers: Sequence[tuple[int, int, int]]) -> int:
    """Samples needed for one output frame (400 for the released CNN)."""
    n = 1
    for _, k, s in reversed(list(conv_layers)):
        n = (n - 1) * s + k
    return n


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient scaled by `scale` (fairseq's feature_grad_mult)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # noqa: ANN001
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        return grad * ctx.scale, None


# --------------------------------------------------------------------------------------------------
# Positional convolution
# --------------------------------------------------------------------------------------------------
class PositionalConv(nn.Module):
    """Grouped conv (kernel conv_pos, 'same' length) with weight norm over dim 2, then GELU.

    Parameters `0.weight_g` [1, 1, K], `0.weight_v` [D, D/G, K], `0.bias` as the released `pos_conv`.
    """

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))
        std = math.sqrt(4.0 / (kernel * dim))
        nn.init.normal_(self.weight_v, 0.0, std)
        with torch.no_grad():
            self.weight_g.copy_(torch.linalg.vector_norm(self.weight_v, dim=(0, 1), keepdim=True))

    def weight(self) -> Tensor:
        return torch._weight_norm(self.weight_v, self.weight_g, 2)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, T, D] -> positional embedding [B, T, D]."""
        y = F.conv1d(
            x.transpose(1, 2), self.weight(), self.bias, padding=self.kernel // 2, groups=self.groups
        )
        if self.kernel % 2 == 0:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


# --------------------------------------------------------------------------------------------------
# Relative position bias
# --------------------------------------------------------------------------------------------------
def relative_position_buckets(rel: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional buckets of relative positions (key - query), as the released code."""
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    rel = rel.abs()
    max_exact = half // 2
    is_small = rel < max_exact
    large = (
        torch.log(rel.clamp(min=1).float() / max_exact)
        / math.log(max_distance / max_exact)
        * (half - max_exact)
    )
    large = (max_exact + large.long()).clamp(max=half - 1)
    return buckets + torch.where(is_small, rel, large)


@dataclass
class AttentionContext:
    """What every layer's attention shares within one forward of the encoder.

    bias: [H, 2T-1] ungated relative position bias values (`SelfAttention.compute_bias`), or None.
    key_pad: additive [B, 1, 1, T] key mask (0 or -inf), keys in reversed order, or None (no padding).
    key_lengths: valid frames per utterance, or None (no padding).
    mask: the scaled_dot_product_attention path's mask buffer, reused by the layers.
    """

    bias: Tensor | None
    key_pad: Tensor | None
    key_lengths: list[int] | None
    mask: Tensor | None = None


class SelfAttention(nn.Module):
    """Multi-head self-attention with the gated relative position bias.

    Names as the released code: q/k/v/out_proj, grep_linear (head_dim -> 8), grep_a [1, H, 1, 1],
    relative_attention_bias (layer 0 only).
    """

    def __init__(self, cfg: WavLMConfig, has_bias: bool):
        super().__init__()
        d, h = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.num_heads, self.head_dim = h, d // h
        self.dropout = cfg.attention_dropout
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.k_proj = Linear(d, d)
        self.v_proj = Linear(d, d)
        self.q_proj = Linear(d, d)
        self.out_proj = Linear(d, d)
        self.gru_rel_pos = cfg.gru_rel_pos and cfg.relative_position_embedding
        if self.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, h, 1, 1))
        if has_bias:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, h)
        self.max_mask_elems = 1 << 24  # 64 MiB of fp32 mask per block of queries
        # CPU inference from this many frames on: head by head on oneDNN (measured crossover ~250)
        self.per_head_min_frames = 256
        self.max_score_elems = 1 << 20  # 4 MiB of fp32 scores per block of queries (per-head path)

    def compute_bias(self, t: int) -> Tensor:
        """The relative position bias in reversed-key (Hankel) form: values [H, 2T-1] such that
        bias(query i, key T-1-m') = vals[:, i + m'].

        The reference bias is bias[h, i, j] = E[bucket(j - i), h], a Toeplitz matrix. Numbering the
        keys backwards (j = T-1-j') turns it into a Hankel matrix, which is a plain strided view
        `vals.unfold(1, T, 1)` of its 2T-1 distinct values: no [H, T, T] tensor is ever built.
        """
        m = torch.arange(2 * t - 1, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_buckets((t - 1) - m, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).t().contiguous()

    def gate(self, x: Tensor) -> Tensor:
        """Per-(batch, head, query) gate [B, H, T, 1] from the attention input x [B, T, D]."""
        b, t, _ = x.shape
        g = self.grep_linear(x.view(b, t, self.num_heads, self.head_dim))  # [B, T, H, 8]
        g = torch.sigmoid(g.view(b, t, self.num_heads, 2, 4).sum(-1))
        ga, gb = g[..., 0], g[..., 1]
        gate = ga * (gb * self.grep_a.view(1, 1, self.num_heads) - 1.0) + 2.0  # [B, T, H]
        return gate.transpose(1, 2).unsqueeze(-1)

    def _per_head(
        self, q: Tensor, k: Tensor, v: Tensor, hankel: Tensor | None, gate: Tensor | None,
        key_lengths: list[int] | None,
    ) -> Tensor:
        """CPU inference: attention [B, T, H * hd] (before out_proj) of q, k, v [B, T, H, hd] (keys and
        values numbered backwards, `hankel` the [H, T, T] bias view) one utterance and head at a time, both
        products on oneDNN's inner product (torch's bmm and SDPA call MKL's sgemm; see `Linear`), the
        gated bias added to each block of scores in place, padded keys left out of the products. Exact
        softmax attention: equal to the SDPA path up to rounding."""
        b, t, h, hd = q.shape
        lin = torch.ops.mkldnn._linear_pointwise
        out = torch.empty(b, t, h, hd, dtype=q.dtype, device=q.device)
        qb = torch.empty(h, t, hd, dtype=q.dtype, device=q.device)
        rows = max(1, self.max_score_elems // t)
        for i in range(b):
            n = t if key_lengths is None else key_lengths[i]  # valid keys: the last n when reversed
            torch.mul(q[i].transpose(0, 1), hd**-0.5, out=qb)
            kb = k[i, t - n :].transpose(0, 1).contiguous()  # [H, n, hd]
            vb = v[i, t - n :].permute(1, 2, 0).contiguous()  # [H, hd, n]: the second product's "weight"
            for j in range(h):
                for i0 in range(0, t, rows):
                    i1 = min(t, i0 + rows)
                    scores = lin(qb[j, i0:i1], kb[j], None, "none", [], "")  # [rows, n]
                    if hankel is not None:
                        hk = hankel[j, i0:i1, t - n :]
                        scores = scores.add_(hk) if gate is None else scores.addcmul_(gate[i, j, i0:i1], hk)
                    out[i, i0:i1, j] = lin(torch.softmax(scores, -1), vb[j], None, "none", [], "")
        return out.view(b, t, h * hd)

    def forward(self, x: Tensor, ctx: AttentionContext) -> Tensor:
        """x [B, T, D] -> [B, T, D], bias and padding from `ctx`."""
        with profile_scope("bias_gate"):
            gate = self.gate(x) if (ctx.bias is not None and self.gru_rel_pos) else None
        with profile_scope("attention"):
            return self._attend(x, ctx, gate)

    def _attend(self, x: Tensor, ctx: AttentionContext, gate: Tensor | None) -> Tensor:
        """Attention of x [B, T, D]; `gate` [B, H, T, 1] from `self.gate`, or None.

        Keys and values are computed from the time-reversed input, so the bias is a view; softmax
        attention does not depend on the order of the keys. CPU inference of T >= `per_head_min_frames`
        takes `_per_head`; otherwise the gated bias (+ key padding) goes to
        `scaled_dot_product_attention` as the additive mask, built in one reused buffer, for blocks of
        queries small enough that the buffer stays under `self.max_mask_elems` elements (inference).
        """
        b, t, d = x.shape
        h, hd = self.num_heads, self.head_dim
        drop = self.dropout if self.training else 0.0
        bias_vals, key_pad_rev = ctx.bias, ctx.key_pad
        per_head = (
            not torch.is_grad_enabled() and not drop and t >= self.per_head_min_frames and self.q_proj.onednn(x)
        )
        q = self.q_proj(x).view(b, t, h, hd)
        if bias_vals is None and key_pad_rev is None and not per_head:
            k = self.k_proj(x).view(b, t, h, hd).transpose(1, 2)
            v = self.v_proj(x).view(b, t, h, hd).transpose(1, 2)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, dropout_p=drop)
            return self.out_proj(y.transpose(1, 2).reshape(b, t, d))
        x_rev = x.flip(1)
        k, v = self.k_proj(x_rev).view(b, t, h, hd), self.v_proj(x_rev).view(b, t, h, hd)
        hankel = bias_vals.unfold(1, t, 1) if bias_vals is not None else None  # [H, T, T] view
        if per_head:
            return self.out_proj(self._per_head(q, k, v, hankel, gate, ctx.key_lengths))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        training = torch.is_grad_enabled() and (x.requires_grad or (gate is not None and gate.requires_grad))
        rows = max(1, min(t, self.max_mask_elems // max(1, b * h * t)))
        if training:
            rows = t  # keep autograd simple: one block
        out = None if rows >= t else torch.empty(b, t, h, hd, dtype=q.dtype, device=q.device)
        for i0 in range(0, t, rows):
            i1 = min(t, i0 + rows)
            if hankel is None:
                mask = key_pad_rev
            elif training:
                hk = hankel[:, i0:i1]
                mask = hk * gate if gate is not None else hk.unsqueeze(0)
                mask = mask if key_pad_rev is None else mask + key_pad_rev
            else:
                shape = (b, h, i1 - i0, t)
                mbuf = ctx.mask
                if mbuf is None or mbuf.numel() < math.prod(shape) or mbuf.dtype != q.dtype:
                    mbuf = ctx.mask = torch.empty(math.prod(shape), dtype=q.dtype, device=q.device)
                mask = mbuf[: math.prod(shape)].view(shape)
                hk = hankel[:, i0:i1]
                g = gate[:, :, i0:i1] if gate is not None else torch.ones((), dtype=q.dtype, device=q.device)
                if key_pad_rev is None:
                    torch.mul(g, hk, out=mask)
                else:
                    torch.addcmul(key_pad_rev, g, hk, out=mask)
            y = F.scaled_dot_product_attention(q[:, :, i0:i1], k, v, attn_mask=mask, dropout_p=drop)
            if out is None:
                return self.out_proj(y.transpose(1, 2).reshape(b, t, d))
            out[:, i0:i1] = y.transpose(1, 2)
        assert out is not None
        return self.out_proj(out.view(b, t, d))


class EncoderLayer(nn.Module):
    """Transformer layer, post-LN (Base) or pre-LN (Large), names as the released code."""

    def __init__(self, cfg: WavLMConfig, has_bias: bool):
        super().__init__()
        d = cfg.encoder_embed_dim
        self.layer_norm_first = cfg.layer_norm_first
        self.self_attn = SelfAttention(cfg, has_bias)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.fc1 = Linear(d, cfg.encoder_ffn_embed_dim)
        self.fc2 = Linear(cfg.encoder_ffn_embed_dim, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.activation = ACTIVATIONS[cfg.activation_fn]
        self.dropout = cfg.dropout
        self.activation_dropout = cfg.activation_dropout

    def _ffn(self, x: Tensor) -> Tensor:
        with profile_scope("ffn"):
            h = self.fc1.gelu(x) if self.activation is F.gelu else self.activation(self.fc1(x))
            x = F.dropout(h, self.activation_dropout, self.training)
            return F.dropout(self.fc2(x), self.dropout, self.training)

    def forward(self, x: Tensor, ctx: AttentionContext) -> Tensor:
        if self.layer_norm_first:
            a = self.self_attn(self.self_attn_layer_norm(x), ctx)
            x = x + F.dropout(a, self.dropout, self.training)
            return x + self._ffn(self.final_layer_norm(x))
        a = self.self_attn(x, ctx)
        x = self.self_attn_layer_norm(x + F.dropout(a, self.dropout, self.training))
        return self.final_layer_norm(x + self._ffn(x))


class TransformerEncoder(nn.Module):
    """Positional conv + layers; `pos_conv.0.*`, `layers.<i>.*`, `layer_norm.*` as the released code."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.cfg = cfg
        self.pos_conv = nn.ModuleList(
            [PositionalConv(cfg.encoder_embed_dim, cfg.conv_pos, cfg.conv_pos_groups)]
        )
        self.layer_norm_first = cfg.layer_norm_first
        self.layers = nn.ModuleList(
            EncoderLayer(cfg, has_bias=cfg.relative_position_embedding and i == 0)
            for i in range(cfg.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(cfg.encoder_embed_dim, eps=cfg.layer_norm_eps)

    def forward(
        self, x: Tensor, padding_mask: Tensor | None, num_layers: int | None = None
    ) -> tuple[Tensor, ...]:
        """x [B, T, D]; padding_mask bool [B, T] (True = pad). Returns hidden states (see WavLMOutput)."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        with profile_scope("pos_conv"):
            x = x + self.pos_conv[0](x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, self.cfg.dropout, self.training)
        n = len(self.layers) if num_layers is None else num_layers
        ctx = AttentionContext(bias=None, key_pad=None, key_lengths=None)
        if padding_mask is not None:
            key_pad = torch.zeros(padding_mask.shape, dtype=x.dtype, device=x.device)
            ctx.key_pad = key_pad.masked_fill_(padding_mask.flip(1), float("-inf"))[:, None, None, :]
            ctx.key_lengths = (~padding_mask).sum(1).tolist()
        first = self.layers[0].self_attn if len(self.layers) else None
        if first is not None and hasattr(first, "relative_attention_bias") and n > 0:
            with profile_scope("bias_gate"):
                ctx.bias = first.compute_bias(x.shape[1]).to(x.dtype)
        states = [x]
        for i, layer in enumerate(self.layers[:n]):
            # layerdrop never skips layer 0 (it owns the bias), as Hugging Face's implementation
            if (
                self.training
                and i > 0
                and self.cfg.encoder_layerdrop > 0
                and np.random.random() < self.cfg.encoder_layerdrop
            ):
                states.append(x)
                continue
            x = layer(x, ctx)
            states.append(x)
        if self.layer_norm_first and n == len(self.layers):
            states[-1] = self.layer_norm(states[-1])
        return tuple(states)


# --------------------------------------------------------------------------------------------------
# Span masking
# --------------------------------------------------------------------------------------------------
def compute_mask_indices(
    shape: tuple[int, int],
    lengths: Sequence[int] | None,
    mask_prob: float,
    mask_length: int,
    min_masks: int = 0,
    no_overlap: bool = False,
    min_space: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Random spans as fairseq's static `compute_mask_indices` (same number of masked frames per row).

    Each row of valid length L gets int(mask_prob * L / mask_length + u) spans (u ~ U[0, 1)), at least
    `min_masks`, with starts drawn without replacement; rows are then cut down to the smallest count.
    """
    rng = rng or np.random.default_rng()
    bsz, t = shape
    mask = np.zeros(shape, dtype=bool)
    picked: list[np.ndarray] = []
    for i in range(bsz):
        sz = t if lengths is None else int(lengths[i])
        num = int(mask_prob * sz / float(mask_length) + rng.random())
        num = max(min_masks, num)
        if no_overlap:
            starts: list[int] = []
            parts = [(0, sz)]
            for _ in range(num):
                lens = np.array([e - s - mask_length - min_space for s, e in parts])
                ok = lens > 0
                if not ok.any():
                    break
                p = lens * ok / (lens * ok).sum()
                j = rng.choice(len(parts), p=p)
                s, e = parts.pop(j)
                st = int(rng.integers(s, e - mask_length))
                starts.append(st)
                if st - s - min_space >= mask_length:
                    parts.append((s, st - min_space + 1))
                if e - st - mask_length - min_space > mask_length:
                    parts.append((st + mask_length + min_space, e))
            idx = np.asarray(starts, dtype=np.int64)
            idx = (idx[:, None] + np.arange(mask_length)[None]).reshape(-1) if len(idx) else idx
        else:
            span = min(mask_length, sz - 1) if sz > 1 else 1
            n_start = max(sz - span, 1)
            num = min(num, n_start)
            st = rng.choice(n_start, num, replace=False)
            idx = (st[:, None] + np.arange(span)[None]).reshape(-1)
        idx = np.unique(idx[idx < sz])
        picked.append(idx)
    min_len = min((len(p) for p in picked), default=0)
    for i, idx in enumerate(picked):
        if len(idx) > min_len:
            idx = rng.choice(idx, min_len, replace=False)
        mask[i, idx] = True
    return mask


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
class WavLM(nn.Module):
    """The WavLM encoder. `state_dict()` keys are the released checkpoints' keys."""

    def __init__(self, cfg: WavLMConfig):
        super().__init__()
        self.cfg = cfg
        self.conv_spec = cfg.conv_layers()
        self.feature_extractor = FeatureExtractor(cfg)
        c = self.conv_spec[-1][0]
        self.layer_norm = nn.LayerNorm(c, eps=cfg.layer_norm_eps)
        self.post_extract_proj = Linear(c, cfg.encoder_embed_dim) if c != cfg.encoder_embed_dim else None
        self.mask_emb = nn.Parameter(torch.empty(cfg.encoder_embed_dim).uniform_())
        self.encoder = TransformerEncoder(cfg)

    # --- geometry ---------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return self.cfg.encoder_layers

    @property
    def embed_dim(self) -> int:
        return self.cfg.encoder_embed_dim

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.conv_spec)

    @property
    def frame_shift(self) -> int:
        return int(np.prod([s for _, _, s in self.conv_spec]))

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return conv_output_lengths(lengths, self.conv_spec)

    # --- pieces -----------------------------------------------------------------------------------
    def normalize_waveform(self, wav: Tensor, lengths: Tensor | None) -> Tensor:
        """Per-utterance zero mean, unit variance over the valid samples (padding set to 0)."""
        eps = self.cfg.normalize_eps
        if lengths is None:
            var, mean = torch.var_mean(wav, dim=-1, unbiased=False, keepdim=True)
            return (wav - mean) / torch.sqrt(var + eps)
        valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
        n = lengths.to(wav.dtype).clamp(min=1)[:, None]
        w = wav * valid
        mean = w.sum(-1, keepdim=True) / n
        var = ((w - mean) * valid).pow(2).sum(-1, keepdim=True) / n
        return ((wav - mean) / torch.sqrt(var + eps)) * valid

    def apply_mask(
        self,
        x: Tensor,
        padding_mask: Tensor | None,
        mask_indices: Tensor | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Span masking with the learned `mask_emb` (time) and zeroed channel spans, as fairseq.

        x [B, T, D]; returns (masked x, bool [B, T] masked frames). `mask_indices` given: used as is.
        """
        cfg = self.cfg
        b, t, d = x.shape
        if rng is None:  # drawn from torch's generator, so a seeded run (and its resume) masks the same frames
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        if mask_indices is None and cfg.mask_prob > 0:
            lengths = None if padding_mask is None else (~padding_mask).sum(-1).tolist()
            mask_indices = torch.from_numpy(
                compute_mask_indices(
                    (b, t),
                    lengths,
                    cfg.mask_prob,
                    cfg.mask_length,
                    min_masks=2,
                    no_overlap=cfg.no_mask_overlap,
                    min_space=cfg.mask_min_space,
                    rng=rng,
                )
            ).to(x.device)
        if mask_indices is not None:
            x = torch.where(mask_indices.unsqueeze(-1), self.mask_emb.to(x.dtype), x)
        if cfg.mask_channel_prob > 0:
            ch = compute_mask_indices(
                (b, d),
                None,
                cfg.mask_channel_prob,
                cfg.mask_channel_length,
                no_overlap=cfg.no_mask_channel_overlap,
                min_space=cfg.mask_channel_min_space,
                rng=rng,
            )
            x = x.masked_fill(torch.from_numpy(ch).to(x.device).unsqueeze(1), 0.0)
        return x, mask_indices

    def _features(
        self,
        wav: Tensor,
        lengths: Tensor | None,
        normalize: bool | None = None,
        norm_stats: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Waveform -> (CNN features [B, T, C], frame lengths [B], padding mask or None)."""
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        if wav.dim() != 2:
            raise ValueError(f"expected waveform [B, S], got shape {tuple(wav.shape)}")
        dtype = self.layer_norm.weight.dtype
        if wav.dtype != dtype:
            wav = wav.to(dtype)
        if lengths is not None:
            lengths = torch.as_tensor(lengths).to(device=wav.device, dtype=torch.long)
            if (lengths > wav.shape[1]).any():
                raise ValueError(f"lengths {lengths.tolist()} exceed the padded length {wav.shape[1]}")
            if bool((lengths == wav.shape[1]).all()):
                lengths = None
        if self.cfg.normalize if normalize is None else normalize:
            wav = self.normalize_waveform(wav, lengths)
        elif lengths is not None:
            valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
            wav = wav * valid
        if wav.shape[1] < self.receptive_field:
            raise ValueError(
                f"waveform of {wav.shape[1]} samples is shorter than the receptive field "
                f"({self.receptive_field} samples)"
            )
        with profile_scope("cnn"):
            if self.cfg.feature_grad_mult > 0:
                feats = self.feature_extractor(wav, norm_stats)
                if self.cfg.feature_grad_mult != 1.0 and feats.requires_grad:
                    feats = GradMultiply.apply(feats, self.cfg.feature_grad_mult)
            else:
                with torch.no_grad():
                    feats = self.feature_extractor(wav, norm_stats)
        b, t = feats.shape[:2]
        if lengths is None:
            return feats, torch.full((b,), t, dtype=torch.long, device=wav.device), None
        frames = self.output_lengths(lengths).clamp(max=t)
        if (frames < 1).any():
            raise ValueError(f"utterance(s) shorter than the receptive field: lengths {lengths.tolist()}")
        padding_mask = torch.arange(t, device=wav.device)[None, :] >= frames[:, None]
        return feats, frames, padding_mask

    def _project(self, feats: Tensor) -> Tensor:
        x = self.layer_norm(feats)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return x

    # --- entry points -----------------------------------------------------------------------------
    def extract_features(
        self,
        wav: Tensor,
        lengths: Tensor | None = None,
        num_layers: int | None = None,
        normalize: bool | None = None,
        norm_stats: tuple[Tensor, Tensor] | None = None,
    ) -> WavLMOutput:
        """wav float [B, S] at 16 kHz, lengths long [B] samples (None: all S) -> WavLMOutput.

        `num_layers` stops after that many Transformer layers (hidden_states then has num_layers+1
        entries, identical to the first ones of a full run). `normalize` overrides the config's
        waveform normalisation (e.g. False for audio normalised beforehand as a whole); `norm_stats`
        the first GroupNorm's statistics (see `FeatureExtractor.first_norm_stats`; windows of a long
        recording).
        """
        feats, frames, padding_mask = self._features(wav, lengths, normalize, norm_stats)
        x = F.dropout(self._project(feats), self.cfg.dropout_input, self.training)
        states = self.encoder(x, padding_mask, num_layers)
        return WavLMOutput(hidden_states=states, lengths=frames, padding_mask=padding_mask)

    def forward(
        self,
        wav: Tensor,
        lengths: Tensor | None = None,
        mask: bool = False,
        mask_indices: Tensor | None = None,
        num_layers: int | None = None,
    ) -> WavLMForwardOutput:
        """Lower-level pass for pre-training: features, masking (when `mask` or `mask_indices`),
        encoder. Masked frames are replaced by `mask_emb` before the positional convolution."""
        feats, frames, padding_mask = self._features(wav, lengths)
        x = self._project(feats)
        unmasked = F.dropout(x, self.cfg.dropout_features, self.training)
        x = F.dropout(x, self.cfg.dropout_input, self.training)
        if mask or mask_indices is not None:
            x, mask_indices = self.apply_mask(x, padding_mask, mask_indices)
        states = self.encoder(x, padding_mask, num_layers)
        return WavLMForwardOutput(
            conv_features=feats,
            features=unmasked,
            encoder_input=x,
            mask_indices=mask_indices,
            padding_mask=padding_mask,
            lengths=frames,
            hidden_states=states,
        )
