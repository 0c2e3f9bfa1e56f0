"""Export the WavLM encoder to an ONNX graph (deployment: onnxruntime, on-device runtimes).

    export_onnx(model, "wavlm.onnx", layers=None)   # all L+1 hidden states

The graph takes `wav` float [B, S] (16 kHz) and `lengths` int64 [B] (valid samples) with dynamic batch and
length, and returns the chosen hidden states `hidden_state_<i>` [B, T, D] (meaning as
`WavLM.extract_features`) and `frame_lengths` int64 [B]. The waveform normalisation the checkpoint asks
for and the gated relative position bias are part of the graph.

`WavLM.extract_features` is tuned for eager PyTorch (bias as a strided Hankel view, reused buffers, blocks
chosen from the input's size, checks that raise on bad lengths), which a shape-generic graph cannot hold.
`ExportableEncoder` computes the same function from the same parameters without any of that: the
Toeplitz bias gathered from `compute_bias`'s 2T-1 values, gated per layer and added to the key padding
as one attention mask, every step the padded-batch path. The tests compare the two within 1e-4.
Bad lengths are not checked in the graph: an utterance shorter than the receptive field gets 0 frames
(its hidden states are NaN), lengths above S count as S.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavlm.models.checkpoint import _atomic
from wavlm.models.wavlm import ConvBlock, EncoderLayer, SelfAttention, WavLM, conv_output_lengths

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the dynamo exporter's own opset (torch 2.13); older opsets are converted from it


class OnnxExportError(ValueError):
    """A bad export request (layer selection, opset) or a graph that fails the ONNX checker."""


def select_layers(spec: str | Sequence[int] | None, num_layers: int) -> list[int]:
    """Hidden-state indices from "all" (or None) or "N[,M...]"; 0 is the encoder input, L the last layer."""
    if spec is None or spec == "all":
        return list(range(num_layers + 1))
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        idx = sorted({int(str(i).strip()) for i in items})
    except ValueError:
        raise OnnxExportError(f"--layers {spec!r}: expected 'all' or comma-separated integers like '4,12'") from None
    bad = [i for i in idx if not 0 <= i <= num_layers]
    if not idx or bad:
        raise OnnxExportError(
            f"--layers {spec!r}: hidden-state indices must be in 0..{num_layers} "
            f"(the model has {num_layers} layers; 0 is the encoder input), got {bad or 'none'}"
        )
    return idx


def _conv_block(block: ConvBlock, x: Tensor) -> Tensor:
    conv: nn.Conv1d = block[0]  # type: ignore[assignment]
    y = F.conv1d(x, conv.weight, conv.bias, stride=block.stride)
    if block.norm == "group":
        gn: nn.GroupNorm = block[2]  # type: ignore[assignment]
        y = F.group_norm(y, gn.num_groups, gn.weight, gn.bias, gn.eps)
    elif block.norm == "layer":
        ln: nn.LayerNorm = block[2][1]  # type: ignore[index]
        y = F.layer_norm(y.transpose(1, 2), ln.normalized_shape, ln.weight, ln.bias, ln.eps).transpose(1, 2)
    return F.gelu(y)


def _attention(att: SelfAttention, x: Tensor, bias: Tensor | None, key_pad: Tensor) -> Tensor:
    """x [B, T, D]; bias [H, T, T] (ungated) or None; key_pad additive [B, 1, 1, T]."""
    b, t, d = x.shape
    h, hd = att.num_heads, att.head_dim
    q, k, v = (proj(x).view(b, t, h, hd).transpose(1, 2) for proj in (att.q_proj, att.k_proj, att.v_proj))
    mask = key_pad
    if bias is not None:
        mask = (bias * att.gate(x) if att.gru_rel_pos else bias) + key_pad
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return att.out_proj(y.transpose(1, 2).reshape(b, t, d))


def _layer(layer: EncoderLayer, x: Tensor, bias: Tensor | None, key_pad: Tensor) -> Tensor:
    def ffn(z: Tensor) -> Tensor:
        return layer.fc2(layer.activation(layer.fc1(z)))

    if layer.layer_norm_first:
        x = x + _attention(layer.self_attn, layer.self_attn_layer_norm(x), bias, key_pad)
        return x + ffn(layer.final_layer_norm(x))
    x = layer.self_attn_layer_norm(x + _attention(layer.self_attn, x, bias, key_pad))
    return layer.final_layer_norm(x + ffn(x))


class ExportableEncoder(nn.Module):
    """`model.extract_features(wav, lengths)` (eval mode) as a traceable function of (wav, lengths) that
    returns the hidden states `layers` (indices into the L+1 states) and the frame lengths."""

    def __init__(self, model: WavLM, layers: Sequence[int]):
        super().__init__()
        self.model = model
        self.layers = list(layers)

    def forward(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        m = self.model
        lengths = torch.clamp(lengths, max=wav.shape[1])
        valid = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
        wav = m.normalize_waveform(wav, lengths) if m.cfg.normalize else wav * valid
        feats = wav.unsqueeze(1)
        for block in m.feature_extractor.conv_layers:
            feats = _conv_block(block, feats)
        feats = feats.transpose(1, 2)  # [B, T, C]
        t = feats.shape[1]
        frames = conv_output_lengths(lengths, m.conv_spec)  # <= t, since lengths <= S
        padding_mask = torch.arange(t, device=wav.device)[None, :] >= frames[:, None]

        enc = m.encoder
        x = m._project(feats).masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + enc.pos_conv[0](x)
        if not enc.layer_norm_first:
            x = enc.layer_norm(x)
        n = max(self.layers)
        key_pad = torch.zeros_like(padding_mask, dtype=x.dtype).masked_fill(padding_mask, float("-inf"))
        key_pad = key_pad[:, None, None, :]
        bias = None
        first = enc.layers[0].self_attn if n > 0 else None
        if first is not None and hasattr(first, "relative_attention_bias"):
            # compute_bias gives vals [H, 2T-1] with bias(query i, key j) = vals[:, i - j + T - 1]
            pos = torch.arange(t, device=wav.device)
            bias = first.compute_bias(t)[:, pos[:, None] - pos[None, :] + (t - 1)].to(x.dtype)
        states = [x]
        for layer in enc.layers[:n]:
            x = _layer(layer, x, bias, key_pad)
            states.append(x)
        if enc.layer_norm_first and n == len(enc.layers):
            states[-1] = enc.layer_norm(states[-1])
        return (*(states[i] for i in self.layers), frames)


def export_onnx(
    model: WavLM,
    path: str | os.PathLike,
    layers: str | Sequence[int] | None = None,
    opset: int | None = None,
) -> list[str]:
    """Write `model`'s encoder as an ONNX graph to `path` (atomically) and check it with onnx.checker.

    layers: "all"/None (the L+1 hidden states) or indices (see `select_layers`). Returns the output names.
    Puts `model` in eval mode. Uses the dynamo exporter (torch.export): it keeps batch and length symbolic
    and fails loudly where code would specialise them, where the TorchScript tracer (dynamo=False, deprecated
    since torch 2.9) bakes Python control flow and sizes silently; opsets below 18 do not convert from it.
    """
    import onnx

    idx = select_layers(layers, model.num_layers)
    if opset is not None and opset < DEFAULT_OPSET:
        raise OnnxExportError(f"--opset {opset}: the exporter needs opset {DEFAULT_OPSET} or newer")
    names = [f"hidden_state_{i}" for i in idx] + ["frame_lengths"]
    enc = ExportableEncoder(model, idx).eval()
    rf = model.receptive_field
    batch = torch.export.Dim("batch", min=1)
    samples = torch.export.Dim("samples", min=rf)
    wav = torch.zeros(2, rf * 4)
    lengths = torch.tensor([rf * 4, rf * 3])

    def write(tmp: str) -> None:
        with torch.no_grad():
            program = torch.onnx.export(
                enc,
                (wav, lengths),
                dynamo=True,
                input_names=["wav", "lengths"],
                output_names=names,
                dynamic_shapes={"wav": {0: batch, 1: samples}, "lengths": {0: batch}},
                opset_version=opset or DEFAULT_OPSET,
                external_data=False,
                verbose=False,
            )
        program.save(tmp, external_data=False)
        try:
            onnx.checker.check_model(tmp, full_check=True)
        except onnx.checker.ValidationError as e:
            raise OnnxExportError(f"{path}: the exported graph fails the ONNX checker: {e}") from None

    _atomic(Path(path), write)
    logger.info("%s: ONNX opset %d, outputs %s", path, opset or DEFAULT_OPSET, ", ".join(names))
    return names
