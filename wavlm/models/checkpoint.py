"""Checkpoint input/output in one place: Microsoft's released `.pt`, Hugging Face dirs, ours.

Formats
  * official / ours: a `torch.save`d dict `{'cfg': dict, 'model': state_dict, ...}` with the released
    code's key names (`mask_emb`, `feature_extractor.conv_layers.0.0.weight`, `encoder.pos_conv.0.weight_g`,
    `encoder.layers.0.self_attn.grep_a`, ...). Our trainer may keep other entries (optimizer, step, ...)
    beside `cfg` and `model`; they are ignored here.
  * Hugging Face: a directory with `config.json` and `model.safetensors` (or `pytorch_model.bin`,
    possibly sharded), of a `WavLMModel` or of a model that holds one under `wavlm.` (WavLMForCTC,
    WavLMForXVector, WavLMForAudioFrameClassification, ...; their heads are ignored). Waveform
    normalisation comes from `preprocessor_config.json` `do_normalize` (none when absent).

Loading is safe (`torch.load(weights_only=True)`, safetensors) and strict: missing and unexpected keys
are listed in the error. Both weight-norm key styles (`weight_g/weight_v` and
`parametrizations.weight.original0/1`) are accepted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wavlm.models.wavlm import WavLM, WavLMConfig

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the path."""


# Keys of the released pre-training heads that may sit in the same state dict; not part of the encoder.
PRETRAIN_HEAD_PREFIXES = ("final_proj.", "label_embs_concat", "label_embs.")

# (official key template, Hugging Face key template); {n} layer index, {p} weight|bias, {x} q|k|v|out.
_KEY_PAIRS: list[tuple[str, str]] = [
    ("mask_emb", "masked_spec_embed"),
    ("feature_extractor.conv_layers.{n}.0.{p}", "feature_extractor.conv_layers.{n}.conv.{p}"),
    ("feature_extractor.conv_layers.{n}.2.1.{p}", "feature_extractor.conv_layers.{n}.layer_norm.{p}"),
    ("feature_extractor.conv_layers.{n}.2.{p}", "feature_extractor.conv_layers.{n}.layer_norm.{p}"),
    ("layer_norm.{p}", "feature_projection.layer_norm.{p}"),
    ("post_extract_proj.{p}", "feature_projection.projection.{p}"),
    ("encoder.pos_conv.0.weight_g", "encoder.pos_conv_embed.conv.weight_g"),
    ("encoder.pos_conv.0.weight_v", "encoder.pos_conv_embed.conv.weight_v"),
    ("encoder.pos_conv.0.bias", "encoder.pos_conv_embed.conv.bias"),
    ("encoder.layer_norm.{p}", "encoder.layer_norm.{p}"),
    ("encoder.layers.{n}.self_attn.{x}_proj.{p}", "encoder.layers.{n}.attention.{x}_proj.{p}"),
    ("encoder.layers.{n}.self_attn.grep_a", "encoder.layers.{n}.attention.gru_rel_pos_const"),
    ("encoder.layers.{n}.self_attn.grep_linear.{p}", "encoder.layers.{n}.attention.gru_rel_pos_linear.{p}"),
    (
        "encoder.layers.{n}.self_attn.relative_attention_bias.weight",
        "encoder.layers.{n}.attention.rel_attn_embed.weight",
    ),
    ("encoder.layers.{n}.self_attn_layer_norm.{p}", "encoder.layers.{n}.layer_norm.{p}"),
    ("encoder.layers.{n}.fc1.{p}", "encoder.layers.{n}.feed_forward.intermediate_dense.{p}"),
    ("encoder.layers.{n}.fc2.{p}", "encoder.layers.{n}.feed_forward.output_dense.{p}"),
    ("encoder.layers.{n}.final_layer_norm.{p}", "encoder.layers.{n}.final_layer_norm.{p}"),
]
_GROUPS = {"n": r"(?P<n>\d+)", "p": r"(?P<p>weight|bias)", "x": r"(?P<x>q|k|v|out)"}


def _regex(template: str) -> re.Pattern:
    out = re.escape(template)
    for name, group in _GROUPS.items():
        out = out.replace(re.escape("{" + name + "}"), group)
    return re.compile("^" + out + "$")


_OFF2HF = [(_regex(o), h) for o, h in _KEY_PAIRS]
_HF2OFF = [(_regex(h), o) for o, h in _KEY_PAIRS]


def canonical_weight_norm_keys(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """`X.parametrizations.weight.original0/1` -> `X.weight_g/weight_v` (the older style)."""
    out = {}
    for k, v in sd.items():
        k = k.replace(".parametrizations.weight.original0", ".weight_g")
        k = k.replace(".parametrizations.weight.original1", ".weight_v")
        out[k] = v
    return out


def parametrized_weight_norm_keys(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """`X.weight_g/weight_v` -> `X.parametrizations.weight.original0/1` (what transformers saves)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", k)
        k = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", k)
        out[k] = v
    return out


def official_to_hf(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Released key names -> Hugging Face `WavLMModel` key names (parametrized weight norm).

    Keys that have no counterpart are kept unchanged (the caller's strict load will name them).
    """
    out: dict[str, Tensor] = {}
    for k, v in canonical_weight_norm_keys(sd).items():
        for rx, tmpl in _OFF2HF:
            m = rx.match(k)
            if m:
                k = tmpl.format(**m.groupdict())
                break
        out[k] = v
    return parametrized_weight_norm_keys(out)


def hf_to_official(sd: dict[str, Tensor], extractor_mode: str) -> dict[str, Tensor]:
    """Hugging Face `WavLMModel` key names (either weight-norm style) -> released key names."""
    out: dict[str, Tensor] = {}
    for k, v in canonical_weight_norm_keys(sd).items():
        for rx, tmpl in _HF2OFF:
            m = rx.match(k)
            if not m:
                continue
            if tmpl.endswith(".2.1.{p}") and extractor_mode != "layer_norm":
                continue
            if tmpl.endswith(".2.{p}") and extractor_mode == "layer_norm":
                continue
            k = tmpl.format(**m.groupdict())
            break
        out[k] = v
    return out


# --------------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------------
_HF_ACT = {
    "gelu": "gelu",
    "relu": "relu",
    "gelu_new": "gelu_accurate",
    "gelu_pytorch_tanh": "gelu_accurate",
    "gelu_fast": "gelu_accurate",
}
_ACT_HF = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new"}


def cfg_from_hf(config: dict[str, Any], do_normalize: bool, where: str = "config.json") -> WavLMConfig:
    """Hugging Face `WavLMConfig` (as a dict) -> our config."""
    if config.get("model_type", "wavlm") != "wavlm":
        raise CheckpointError(f"{where}: model_type is {config.get('model_type')!r}, expected 'wavlm'")
    if config.get("add_adapter"):
        raise CheckpointError(f"{where}: add_adapter=true is not supported")
    if config.get("feat_extract_activation", "gelu") != "gelu":
        raise CheckpointError(
            f"{where}: feat_extract_activation {config['feat_extract_activation']!r} unsupported"
        )
    act = config.get("hidden_act", "gelu")
    if act not in _HF_ACT:
        raise CheckpointError(f"{where}: hidden_act {act!r} unsupported")

    def get(key: str, default: Any) -> Any:
        return config.get(key, default)

    dims = get("conv_dim", [512] * 7)
    kernels = get("conv_kernel", [10, 3, 3, 3, 3, 2, 2])
    strides = get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
    layers = [(int(d), int(k), int(s)) for d, k, s in zip(dims, kernels, strides, strict=True)]
    return WavLMConfig(
        extractor_mode="layer_norm" if get("feat_extract_norm", "group") == "layer" else "default",
        conv_feature_layers=str(layers),
        conv_bias=bool(get("conv_bias", False)),
        encoder_layers=int(get("num_hidden_layers", 12)),
        encoder_embed_dim=int(get("hidden_size", 768)),
        encoder_ffn_embed_dim=int(get("intermediate_size", 3072)),
        encoder_attention_heads=int(get("num_attention_heads", 12)),
        activation_fn=_HF_ACT[act],
        layer_norm_first=bool(get("do_stable_layer_norm", False)),
        conv_pos=int(get("num_conv_pos_embeddings", 128)),
        conv_pos_groups=int(get("num_conv_pos_embedding_groups", 16)),
        relative_position_embedding=True,
        num_buckets=int(get("num_buckets", 320)),
        max_distance=int(get("max_bucket_distance", 800)),
        gru_rel_pos=True,
        normalize=bool(do_normalize),
        normalize_eps=1e-7,
        layer_norm_eps=float(get("layer_norm_eps", 1e-5)),
        dropout=float(get("hidden_dropout", 0.1)),
        attention_dropout=float(get("attention_dropout", 0.1)),
        activation_dropout=float(get("activation_dropout", 0.1)),
        encoder_layerdrop=float(get("layerdrop", 0.1)),
        dropout_input=float(get("feat_proj_dropout", 0.0)),
        mask_prob=float(get("mask_time_prob", 0.05)),
        mask_length=int(get("mask_time_length", 10)),
        mask_channel_prob=float(get("mask_feature_prob", 0.0)),
        mask_channel_length=int(get("mask_feature_length", 10)),
    )


def cfg_to_hf(cfg: WavLMConfig) -> dict[str, Any]:
    """Our config -> a Hugging Face `WavLMConfig` dict (config.json) for `WavLMModel`."""
    if not (cfg.relative_position_embedding and cfg.gru_rel_pos):
        raise CheckpointError(
            "Hugging Face WavLM always has the gated relative position bias; this model has not"
        )
    if cfg.activation_fn not in _ACT_HF:
        raise CheckpointError(f"activation_fn {cfg.activation_fn!r} has no Hugging Face name")
    layers = cfg.conv_layers()
    return {
        "architectures": ["WavLMModel"],
        "model_type": "wavlm",
        "feat_extract_norm": "layer" if cfg.extractor_mode == "layer_norm" else "group",
        "feat_extract_activation": "gelu",
        "conv_dim": [d for d, _, _ in layers],
        "conv_kernel": [k for _, k, _ in layers],
        "conv_stride": [s for _, _, s in layers],
        "num_feat_extract_layers": len(layers),
        "conv_bias": cfg.conv_bias,
        "hidden_size": cfg.encoder_embed_dim,
        "num_hidden_layers": cfg.encoder_layers,
        "num_attention_heads": cfg.encoder_attention_heads,
        "intermediate_size": cfg.encoder_ffn_embed_dim,
        "hidden_act": _ACT_HF[cfg.activation_fn],
        "do_stable_layer_norm": cfg.layer_norm_first,
        "num_conv_pos_embeddings": cfg.conv_pos,
        "num_conv_pos_embedding_groups": cfg.conv_pos_groups,
        "num_buckets": cfg.num_buckets,
        "max_bucket_distance": cfg.max_distance,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout,
        "activation_dropout": cfg.activation_dropout,
        "feat_proj_dropout": cfg.dropout_input,
        "layerdrop": cfg.encoder_layerdrop,
        # HF only creates masked_spec_embed when a mask probability is positive; keep it > 0.
        "mask_time_prob": 0.05,
        "mask_time_length": cfg.mask_length,
        "mask_feature_prob": 0.0,
        "apply_spec_augment": True,
        "add_adapter": False,
    }


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def torch_load(path: str | os.PathLike, *, weights_only: bool = True, map_location: str = "cpu") -> Any:
    """`torch.load` with errors that name the file and say what is wrong."""
    path = Path(path)
    if not path.is_file():
        hint = {"checkpoint_avg.pt": " (the trainer writes it only with trainer.average_best=N > 1)",
                "checkpoint_best.pt": " (the trainer writes it at the first validation; a run that has not "
                                      "validated yet has none)"}.get(path.name, "")
        raise CheckpointError(f"{path}: no such checkpoint file{hint}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e).lower() or "weights only" in str(e).lower():
            raise CheckpointError(
                f"{path}: holds objects other than tensors and plain containers, refused by "
                f"torch.load(weights_only=True); if you trust the file, pass weights_only=False ({e})"
            ) from None
        raise CheckpointError(f"{path}: cannot read checkpoint (corrupt or truncated file?): {e}") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint (corrupt or truncated file?): {e}") from None


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors file (corrupt or truncated?): {e}") from None


def read_hf_weights(d: Path, *, weights_only: bool = True) -> dict[str, Tensor]:
    """All tensors of a Hugging Face model directory (single file or sharded)."""
    for index_name, reader in (
        ("model.safetensors.index.json", "st"),
        ("pytorch_model.bin.index.json", "pt"),
    ):
        index = d / index_name
        if index.is_file():
            try:
                files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"{index}: malformed index: {e}") from None
            sd: dict[str, Tensor] = {}
            for f in files:
                sd.update(
                    _load_safetensors(d / f)
                    if reader == "st"
                    else _as_state_dict(torch_load(d / f, weights_only=weights_only), d / f)
                )
            return sd
    if (d / "model.safetensors").is_file():
        return _load_safetensors(d / "model.safetensors")
    if (d / "pytorch_model.bin").is_file():
        return _as_state_dict(
            torch_load(d / "pytorch_model.bin", weights_only=weights_only), d / "pytorch_model.bin"
        )
    raise CheckpointError(f"{d}: Hugging Face directory without model.safetensors or pytorch_model.bin")


def _as_state_dict(obj: Any, where: Path) -> dict[str, Tensor]:
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{where}: expected a state dict of tensors")
    return obj


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read JSON: {e}") from None


def load_hf_dir(d: str | os.PathLike, *, weights_only: bool = True) -> tuple[WavLMConfig, dict[str, Tensor]]:
    """Config and official-named encoder weights of a Hugging Face directory."""
    d = Path(d)
    if not (d / "config.json").is_file():
        raise CheckpointError(f"{d}: directory without config.json (not a Hugging Face model dir)")
    config = _read_json(d / "config.json")
    pre = d / "preprocessor_config.json"
    do_normalize = bool(_read_json(pre).get("do_normalize", False)) if pre.is_file() else False
    cfg = cfg_from_hf(config, do_normalize, where=str(d / "config.json"))
    sd = read_hf_weights(d, weights_only=weights_only)
    if any(k.startswith("wavlm.") for k in sd):
        heads = sorted({k.split(".")[0] for k in sd if not k.startswith("wavlm.")})
        if heads:
            logger.info("%s: using the encoder under 'wavlm.', ignoring head parameters %s", d, heads)
        sd = {k[len("wavlm.") :]: v for k, v in sd.items() if k.startswith("wavlm.")}
    return cfg, hf_to_official(sd, cfg.extractor_mode)


def load_official(
    path: str | os.PathLike, *, weights_only: bool = True
) -> tuple[WavLMConfig, dict[str, Tensor], dict[str, Any]]:
    """Config, weights and the whole dict of a `{'cfg': ..., 'model': ...}` file (released or ours)."""
    ckpt = torch_load(path, weights_only=weights_only)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "cfg" not in ckpt:
        keys = sorted(ckpt)[:20] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: expected a dict with 'cfg' and 'model' (WavLM format), got {keys}")
    cfg_d = ckpt["cfg"]
    if not isinstance(cfg_d, dict):
        cfg_d = dict(getattr(cfg_d, "__dict__", {}))
    if "encoder_layers" not in cfg_d and isinstance(cfg_d.get("model"), dict):  # fairseq-style nesting
        cfg_d = cfg_d["model"]
    try:
        cfg = WavLMConfig.from_official(cfg_d)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad 'cfg': {e}") from None
    sd = ckpt["model"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: 'model' is not a state dict")
    return cfg, canonical_weight_norm_keys(sd), ckpt


def state_mismatch(own: dict[str, Tensor], sd: dict[str, Tensor], *, allow_missing: tuple[str, ...] = (),
                   name: Callable[[str], str] = str, keys: str = "keys", against: str = "model") -> str:
    """What keeps `sd` from loading strictly into a module with state `own`: missing and unexpected keys
    and shape mismatches, each listed (keys shown through `name`); "" when it fits."""
    missing = sorted(name(k) for k in own if k not in sd and k not in allow_missing)
    unexpected = sorted(name(k) for k in sd if k not in own)
    bad_shape = [
        f"{name(k)}: checkpoint {tuple(sd[k].shape)} vs {against} {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing {keys} ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected {keys} ({len(unexpected)}): {', '.join(unexpected)}")
    if bad_shape:
        parts.append(f"shape mismatch: {'; '.join(bad_shape)}")
    return " | ".join(parts)


def load_weights(
    model: WavLM, sd: dict[str, Tensor], where: str, *, allow_missing: tuple[str, ...] = ()
) -> None:
    """Strict load: missing and unexpected keys are listed; shape mismatches named."""
    sd = {k: v for k, v in sd.items() if not k.startswith(PRETRAIN_HEAD_PREFIXES)}
    own = model.state_dict()
    problems = state_mismatch(own, sd, allow_missing=allow_missing)
    if problems:
        raise CheckpointError(f"{where}: weights do not fit the model config: {problems}")
    absent = [k for k in own if k not in sd]
    if absent:
        logger.info("%s: %s not in the checkpoint, left at its initial value", where, absent)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=False)


def load_model(
    path: str | os.PathLike,
    *,
    weights_only: bool = True,
    map_location: str | torch.device = "cpu",
    train: bool = False,
    overrides: dict[str, Any] | None = None,
) -> WavLM:
    """A WavLM encoder from a released `.pt`, a Hugging Face directory or one of our checkpoints.

    The model is in eval mode unless `train`. `weights_only=False` unpickles arbitrary objects;
    only for files you trust. `overrides` replaces config fields that do not change the weights'
    shapes (dropouts, masking, layerdrop, feature_grad_mult for fine-tuning).
    """
    p = Path(path)
    if p.is_dir():
        cfg, sd = load_hf_dir(p, weights_only=weights_only)
        allow = ("mask_emb",)  # HF models without masking have no masked_spec_embed
    else:
        cfg, sd, _ = load_official(p, weights_only=weights_only)
        allow = ()
    try:
        if overrides:
            cfg = WavLMConfig.from_dict({**dataclasses.asdict(cfg), **overrides})
        model = WavLM(cfg)
    except ValueError as e:
        raise CheckpointError(f"{p}: bad model config: {e}") from None
    load_weights(model, sd, str(p), allow_missing=allow)
    model.to(map_location)
    model.train(train)
    return model


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def _atomic(path: Path, write) -> None:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike, model: WavLM, **extra: Any) -> None:
    """Write `{'cfg': official-style cfg, 'model': official-named weights, **extra}` atomically.

    Microsoft's code loads it (`WavLMConfig(ckpt['cfg'])`, `load_state_dict(ckpt['model'])`).
    """
    obj = {
        **extra,
        "cfg": model.cfg.to_official(),
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    _atomic(Path(path), lambda tmp: torch.save(obj, tmp))


def hf_state_dict(model: WavLM) -> dict[str, Tensor]:
    """The model's weights under Hugging Face `WavLMModel` names."""
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.post_extract_proj is None:  # HF always projects; identity when dims agree
        d = model.cfg.encoder_embed_dim
        sd["post_extract_proj.weight"] = torch.eye(d)
        sd["post_extract_proj.bias"] = torch.zeros(d)
    return official_to_hf(sd)


def save_hf(model: WavLM, out_dir: str | os.PathLike) -> None:
    """Write a Hugging Face directory (config.json, model.safetensors, preprocessor_config.json)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = cfg_to_hf(model.cfg)
    pre = {
        "do_normalize": bool(model.cfg.normalize),
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
        "sampling_rate": 16000,
    }
    sd = hf_state_dict(model)
    _atomic(out / "model.safetensors", lambda tmp: save_file(sd, tmp, metadata={"format": "pt"}))
    _atomic(out / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n"))
    _atomic(
        out / "preprocessor_config.json", lambda tmp: Path(tmp).write_text(json.dumps(pre, indent=2) + "\n")
    )
