"""Checkpoint reading/writing: released format, Hugging Face dirs, ours; strictness and bad files."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMALL_MODEL

import wavlm
from wavlm.bin import export
from wavlm.models.checkpoint import (
    CheckpointError,
    official_to_hf,
    parametrized_weight_norm_keys,
    save_checkpoint,
)
from wavlm.models.wavlm import ConfigError, WavLM, WavLMConfig

transformers = pytest.importorskip("transformers")


def random_model(seed: int = 0, **kw) -> WavLM:
    torch.manual_seed(seed)
    model = WavLM(WavLMConfig(**{**SMALL_MODEL, **kw})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def official_file(path, model: WavLM, *, cfg_extra: dict | None = None, parametrized: bool = False) -> None:
    """A file in the released format, written as Microsoft's code would (plain dict, torch.save)."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if parametrized:
        sd = parametrized_weight_norm_keys(sd)
    cfg = {**model.cfg.to_official(), **(cfg_extra or {})}
    for k in ("normalize_eps", "layer_norm_eps", "required_seq_len_multiple"):  # not in released cfgs
        cfg.pop(k)
    torch.save({"cfg": cfg, "model": sd}, path)


def features(model, wav: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack(model.extract_features(wav).hidden_states)


@pytest.mark.parametrize("parametrized", [False, True], ids=["weight_g_v", "parametrizations"])
def test_official_weight_norm_key_styles(tmp_path, parametrized: bool) -> None:
    model = random_model()
    path = tmp_path / "m.pt"
    official_file(path, model, parametrized=parametrized)
    loaded = wavlm.load_model(path)
    wav = torch.randn(1, 8000)
    torch.testing.assert_close(features(loaded, wav), features(model, wav))


def test_unknown_cfg_keys_ignored_and_missing_take_released_defaults(tmp_path) -> None:
    model = random_model()
    path = tmp_path / "m.pt"
    official_file(path, model, cfg_extra={"some_future_option": 3, "_name": "wavlm", "label_rate": 50})
    ckpt = torch.load(path, weights_only=True)
    assert "some_future_option" in ckpt["cfg"]
    assert wavlm.load_model(path).cfg.encoder_layers == 2
    # a cfg without relative_position_embedding means the released default (False): weights then do not fit
    del ckpt["cfg"]["relative_position_embedding"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="unexpected keys.*relative_attention_bias"):
        wavlm.load_model(path)


def test_yaml_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="encoder_layer"):
        WavLMConfig.from_dict({"encoder_layer": 3})


def test_missing_and_unexpected_keys_are_listed(tmp_path) -> None:
    model = random_model()
    sd = model.state_dict()
    del sd["encoder.layers.1.fc2.bias"]
    sd["encoder.layers.1.extra.weight"] = torch.zeros(1)
    torch.save({"cfg": model.cfg.to_official(), "model": sd}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError) as e:
        wavlm.load_model(tmp_path / "m.pt")
    msg = str(e.value)
    assert str(tmp_path / "m.pt") in msg
    assert "encoder.layers.1.fc2.bias" in msg and "encoder.layers.1.extra.weight" in msg


def test_corrupt_and_truncated_files(tmp_path) -> None:
    model = random_model()
    good = tmp_path / "good.pt"
    save_checkpoint(good, model)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("trunc.pt", "junk.pt", "empty.pt", "absent.pt"):
        with pytest.raises(CheckpointError, match=str(tmp_path / name)):
            wavlm.load_model(tmp_path / name)
    # a truncated safetensors file in a Hugging Face dir
    export.main(["--to", "hf", str(good), str(tmp_path / "hf")])
    st = tmp_path / "hf" / "model.safetensors"
    st.write_bytes(st.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        wavlm.load_model(tmp_path / "hf")


def test_pickled_objects_refused(tmp_path) -> None:
    model = random_model()
    torch.save(
        {"cfg": model.cfg.to_official(), "model": model.state_dict(), "args": Exotic()}, tmp_path / "m.pt"
    )
    with pytest.raises(CheckpointError, match="weights_only"):
        wavlm.load_model(tmp_path / "m.pt")


class Exotic:
    pass


def test_our_checkpoint_with_trainer_state(tmp_path) -> None:
    model = random_model()
    save_checkpoint(tmp_path / "c.pt", model, optimizer={"lr": 1e-3}, step=10)
    loaded = wavlm.load_model(tmp_path / "c.pt")
    wav = torch.randn(1, 8000)
    torch.testing.assert_close(features(loaded, wav), features(model, wav))
    assert not loaded.training


def hf_small_config(**kw) -> transformers.WavLMConfig:
    return transformers.WavLMConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        **kw,
    )


@pytest.mark.parametrize(
    "cls", ["WavLMModel", "WavLMForCTC", "WavLMForXVector", "WavLMForAudioFrameClassification"]
)
def test_hf_directories(tmp_path, cls: str) -> None:
    torch.manual_seed(0)
    hf = getattr(transformers, cls)(hf_small_config(vocab_size=12)).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf.save_pretrained(tmp_path)
    encoder = hf if cls == "WavLMModel" else hf.wavlm
    loaded = wavlm.load_model(tmp_path)
    assert loaded.cfg.normalize is False  # no preprocessor_config.json
    wav = torch.randn(1, 8000)
    with torch.no_grad():
        ref = encoder(wav, output_hidden_states=True)
    ours = features(loaded, wav)
    ref_states = torch.stack(tuple(ref.hidden_states[:-1]) + (ref.last_hidden_state,))
    assert (ours - ref_states).abs().max() < 1e-4


def test_hf_pytorch_bin_old_weight_norm_keys_and_normalize(tmp_path) -> None:
    model = random_model()
    sd = official_to_hf(model.state_dict())
    sd = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in sd.items()
    }
    torch.save(
        {"wavlm." + k: v for k, v in sd.items()} | {"lm_head.weight": torch.zeros(3, 64)},
        tmp_path / "pytorch_model.bin",
    )
    cfg = json.loads(
        json.dumps(__import__("wavlm.models.checkpoint", fromlist=["cfg_to_hf"]).cfg_to_hf(model.cfg))
    )
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True}))
    loaded = wavlm.load_model(tmp_path)
    assert loaded.cfg.normalize is True
    loaded.cfg.normalize = False
    wav = torch.randn(1, 8000)
    torch.testing.assert_close(features(loaded, wav), features(model, wav))


def test_official_to_ours_to_hf_to_transformers(tmp_path) -> None:
    """Released format -> ours -> `export --to hf` -> transformers: no missing/unexpected keys, same out."""
    for kw in ({}, dict(extractor_mode="layer_norm", layer_norm_first=True, conv_bias=True)):
        model = random_model(seed=3, **kw)
        official_file(tmp_path / "m.pt", model)
        assert export.main(["--to", "official", str(tmp_path / "m.pt"), str(tmp_path / "ours.pt")]) == 0
        assert export.main(["--to", "hf", str(tmp_path / "ours.pt"), str(tmp_path / "hf")]) == 0
        hf, info = transformers.WavLMModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        hf.eval()
        wav = torch.randn(2, 12000)
        with torch.no_grad():
            ref = hf(wav, output_hidden_states=True)
        ref_states = torch.stack(tuple(ref.hidden_states[:-1]) + (ref.last_hidden_state,))
        assert (features(model, wav) - ref_states).abs().max() < 1e-4
        # and back: HF dir -> official gives the same weights
        assert export.main(["--to", "official", str(tmp_path / "hf"), str(tmp_path / "back.pt")]) == 0
        back = torch.load(tmp_path / "back.pt", weights_only=True)["model"]
        for k, v in model.state_dict().items():
            torch.testing.assert_close(back[k], v)


def test_export_help(capsys) -> None:
    with pytest.raises(SystemExit):
        export.main(["--help"])
    assert "--to" in capsys.readouterr().out
