"""The full-scale recipe configs (everything under egs/*/*/conf/ but conf/debug/, and conf/model/): each loads into
its dataclass, names the source of its values, and holds the values of the released config it follows.

The expected values below are transcribed from the released files named in each config's header (fairseq
examples/hubert/config/pretrain/*.yaml, examples/hubert/config/finetune/base_10h.yaml,
examples/wav2vec/config/finetuning/{base,vox}_*.yaml), so a config that drifts from its source fails here."""
from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest

from wavlm.config import load
from wavlm.data.css_sim import CssSimConfig
from wavlm.tasks.asr import AsrConfig
from wavlm.tasks.common import load_model_config
from wavlm.tasks.css import CssConfig
from wavlm.tasks.lm import LmConfig
from wavlm.tasks.pretrain import PretrainConfig
from wavlm.tasks.superb import SuperbConfig
from wavlm.tasks.sv import SvConfig
from wavlm.train.schedule import lr_scale

ROOT = Path(__file__).resolve().parents[1]
EGS_CONFIGS = sorted(p for p in ROOT.glob("egs/*/*/conf/**/*.yaml") if "debug" not in p.parts)
MODEL_PRESETS = sorted((ROOT / "conf" / "model").glob("*.yaml"))
SPLITS = ["10m", "1h", "10h", "100h", "960h"]


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def load_any(path: Path):
    """The config `path` as the dataclass its recipe reads it into, nested WavLM overrides checked too."""
    recipe, name = path.parent.parent.name, path.stem
    if recipe == "ssl1":
        cfg = load(PretrainConfig, path)
        load_model_config(cfg.model_preset, cfg.model)
    elif recipe == "asr1" and name.startswith("finetune_"):
        cfg = load(AsrConfig, path)
        load_model_config(cfg.model.preset, cfg.model.encoder)
    elif recipe == "asr1" and name.startswith("lm_"):
        cfg = load(LmConfig, path)
    elif recipe == "sv1":
        cfg = load(SvConfig, path)
        load_model_config(cfg.model.preset, cfg.model.encoder)
    elif recipe in ("superb1", "diar1"):
        cfg = load(SuperbConfig, path)
        assert cfg.task == name, f"{rel(path)}: task {cfg.task} in a file named {name}"
    elif recipe == "css1" and name == "simulation":
        cfg = load(CssSimConfig, path)
        cfg.check()
    elif recipe == "css1":
        cfg = load(CssConfig, path)
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

        unknown = set(cfg.model.conformer) - set(inspect.signature(ConformerEncoder).parameters)
        assert not unknown, f"{rel(path)}: model.conformer keys ConformerEncoder does not take: {unknown}"
    else:
        raise AssertionError(f"{rel(path)}: no loader known for this config; add it to tests/test_paper_configs.py")
    return cfg


@pytest.mark.parametrize("path", EGS_CONFIGS, ids=rel)
def test_config_loads(path):
    load_any(path)


@pytest.mark.parametrize("path", MODEL_PRESETS, ids=rel)
def test_model_preset_loads(path):
    load_model_config(str(path))


@pytest.mark.parametrize("path", [p for p in EGS_CONFIGS if p.name != "simulation.yaml"], ids=rel)
def test_every_value_names_its_source(path):
    """A header lists the sources; every line that sets a value carries a comment saying which one."""
    text = path.read_text()
    assert "Where each value comes from" in text, f"{rel(path)}: no list of sources in the header"
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if re.match(r"\s*[\w.]+:\s*\S", code) or code.strip().endswith("}"):
            assert "#" in line, f"{rel(path)}:{n}: value without a source comment: {line.strip()}"


# ---- pre-training: fairseq examples/hubert/config/pretrain/hubert_{base_librispeech,large_librivox}.yaml ----------
HUBERT_BASE = {"lr": 5e-4, "clip_norm": 10.0, "max_tokens": 1_400_000, "final_dim": 256, "mask_prob": 0.8,
               "encoder_layerdrop": 0.05, "dropout_input": 0.1, "feature_grad_mult": 0.1}
HUBERT_LARGE = {"lr": 1.5e-3, "clip_norm": 1.0, "max_tokens": 900_000, "final_dim": 768, "mask_prob": 0.8,
                "encoder_layerdrop": 0.0, "dropout_input": 0.0, "feature_grad_mult": 1.0}


@pytest.mark.parametrize("path", sorted(ROOT.glob("egs/*/ssl1/conf/*.yaml")), ids=rel)
def test_pretraining_follows_hubert(path):
    cfg = load_any(path)
    want = HUBERT_LARGE if cfg.model_preset == "large" else HUBERT_BASE
    o, t = cfg.trainer.optim, cfg.trainer
    got = {"lr": o.lr, "clip_norm": o.clip_norm, "max_tokens": cfg.data.max_tokens, "final_dim": cfg.final_dim,
           **{k: cfg.model[k] for k in ("mask_prob", "encoder_layerdrop", "dropout_input", "feature_grad_mult")}}
    assert got == pytest.approx(want), rel(path)
    assert list(o.betas) == [0.9, 0.98] and o.eps == 1e-6 and o.weight_decay == 0.01
    assert t.schedule.kind == "linear" and t.schedule.warmup_updates == 32000
    assert (cfg.data.max_sample_size, cfg.data.min_sample_size) == (250_000, 32_000)
    assert (cfg.feature_pen_weight, cfg.pred_nomask_weight, cfg.logit_temp) == (10.0, 0.0, 0.1)


# ---- ASR fine-tuning ----------------------------------------------------------------------------------------------
# split: lr, max_update, mask_prob, mask_channel_prob, layerdrop, freeze, max_tokens, GPUs x update_freq
BASE = {  # examples/hubert/config/finetune/base_10h.yaml for 10h, examples/wav2vec/config/finetuning/base_*.yaml else
    "10m": (5e-5, 13000, 0.65, 0.25, 0.1, 10000, 3_200_000, 8),
    "1h": (5e-5, 13000, 0.65, 0.25, 0.1, 10000, 3_200_000, 8),
    "10h": (2e-5, 25000, 0.75, 0.5, 0.1, 10000, 3_200_000, 8),
    "100h": (3e-5, 80000, 0.65, 0.5, 0.1, 0, 3_200_000, 8),
    "960h": (1e-5, 320000, 0.5, 0.1, 0.1, 0, 3_200_000, 8),
}
LARGE = {  # examples/wav2vec/config/finetuning/vox_*.yaml
    "10m": (1e-4, 13000, 0.65, 0.25, 0.1, 10000, 1_280_000, 20),
    "1h": (3e-4, 13000, 0.75, 0.25, 0.1, 10000, 1_280_000, 20),
    "10h": (1e-4, 20000, 0.75, 0.25, 0.1, 10000, 1_280_000, 20),
    "100h": (3e-5, 80000, 0.5, 0.5, 0.1, 10000, 1_280_000, 20),
    "960h": (3e-5, 320000, 0.5, 0.25, 0.1, 10000, 1_280_000, 24),
}


def gpus_assumed(path: Path) -> int:
    m = re.search(r"assumes (\d+) GPUs", path.read_text())
    assert m, f"{rel(path)}: does not say how many GPUs it assumes"
    return int(m.group(1))


@pytest.mark.parametrize("size, table", [("base", BASE), ("large", LARGE)])
@pytest.mark.parametrize("split", SPLITS)
def test_finetuning_follows_its_source(size, table, split):
    path = ROOT / f"egs/librispeech/asr1/conf/finetune_{size}_{split}.yaml"
    cfg = load_any(path)
    e, t = cfg.model.encoder, cfg.trainer
    got = (t.optim.lr, t.max_updates, e["mask_prob"], e["mask_channel_prob"], e["encoder_layerdrop"],
           cfg.model.freeze_updates, cfg.data.max_tokens, gpus_assumed(path) * t.update_freq)
    assert got == pytest.approx(table[split]), rel(path)
    assert cfg.model.preset == size and cfg.sentence_avg
    assert e["mask_length"] == 10 and e["mask_channel_length"] == 64 and e["feature_grad_mult"] == 0.0
    assert e["dropout"] == e["attention_dropout"] == e["dropout_input"] == 0.0 and e["activation_dropout"] == 0.1
    assert (t.optim.weight_decay, t.optim.clip_norm, t.optim.eps) == (0.0, 0.0, 1e-8)
    s = t.schedule
    assert s.kind == "tri_stage" and s.init_lr_scale == 0.01 and s.final_lr_scale == 0.05
    if (size, split) != ("base", "10h"):
        assert list(s.phase_ratio) == [0.1, 0.4, 0.5]


def test_hubert_base_10h_schedule_in_fixed_steps():
    """base_10h.yaml: warmup_steps 8000, hold_steps 0, decay_steps 72000 over max_update 25000, so training stops
    17000 steps into the decay, at exp(-ln(20) * 17000 / 72000) of the peak."""
    cfg = load_any(ROOT / "egs/librispeech/asr1/conf/finetune_base_10h.yaml")
    s, n = cfg.trainer.schedule, cfg.trainer.max_updates
    assert s.phase_ratio is None and (s.warmup_updates, s.hold_updates, s.decay_updates) == (8000, 0, 72000)
    assert lr_scale(s, 0, n) == pytest.approx(0.01)
    assert lr_scale(s, 8000, n) == pytest.approx(1.0)
    assert lr_scale(s, n, n) == pytest.approx(math.exp(-math.log(20) * 17000 / 72000))


@pytest.mark.parametrize("split", SPLITS)
def test_large_does_not_reuse_the_base_schedule(split):
    base = load_any(ROOT / f"egs/librispeech/asr1/conf/finetune_base_{split}.yaml")
    large = load_any(ROOT / f"egs/librispeech/asr1/conf/finetune_large_{split}.yaml")
    assert (large.trainer.optim.lr, large.data.max_tokens) != (base.trainer.optim.lr, base.data.max_tokens)


# ---- SUPERB: s3prl's legacy downstream configs (s3prl/downstream/{ctc/libriphone.yaml, asr/config.yaml,
# voxceleb1/config.yaml, sv_voxceleb1/configs/amsoftmax.yaml}), read with the search tool ------------------------------
# task: lr, total steps, accumulation, clip, batch, eval step, optimizer (adam: no weight decay; adamw: 0.01)
SUPERB = {
    "pr": (1e-2, 100_000, 2, 1.0, 16, 1000, "adam"),
    "asr": (1e-4, 200_000, 1, 1.0, 32, 2000, "adam"),
    "sid": (1e-4, 200_000, 4, 1.0, 8, 4000, "adam"),
    "asv": (1e-4, 200_000, 5, 1000.0, 10, 10000, "adamw"),
    "sd": (1e-4, 30_000, 4, 1.0, 8, 500, "adam"),  # s3prl/downstream/diarization/config.yaml
}


SUPERB_CONFIGS = sorted([*ROOT.glob("egs/*/superb1/conf/*.yaml"), *ROOT.glob("egs/*/diar1/conf/*.yaml")])


@pytest.mark.parametrize("path", SUPERB_CONFIGS, ids=rel)
def test_superb_follows_s3prl(path):
    cfg = load_any(path)
    lr, steps, accum, clip, batch, every, opt = SUPERB[cfg.task]
    t, o = cfg.trainer, cfg.trainer.optim
    got = (o.lr, t.max_updates, t.update_freq, o.clip_norm, cfg.data.batch_size, t.valid_interval_updates)
    assert got == (lr, steps, accum, clip, batch, every), rel(path)
    assert (list(o.betas), o.eps, o.weight_decay) == ([0.9, 0.999], 1e-8, 0.01 if opt == "adamw" else 0.0)
    assert t.schedule.kind == "constant" and t.seed == 1337  # no scheduler; run_downstream.py --seed 1337
    assert not cfg.upstream.trainable and not cfg.upstream.normalize  # SUPERB: frozen, no feature normalisation
    h = cfg.head
    if cfg.task == "pr":
        assert (h.project_dim, h.rnn_layers, cfg.data.half_batch_samples) == (256, 0, 300_000)
    elif cfg.task == "asr":
        assert (h.project_dim, h.rnn_layers, h.rnn_dim, h.bidirectional, h.dropout) == (1024, 2, 1024, True, 0.2)
    elif cfg.task == "sid":
        assert (h.project_dim, cfg.data.crop_samples) == (256, 128_000)
    elif cfg.task == "sd":  # modelrc rnn_layers, hidden_size; datarc chunk_size, num_speakers; eval_batchsize
        assert (h.rnn_layers, h.rnn_dim, cfg.data.chunk_frames, cfg.data.num_speakers, cfg.data.valid_batch_size) == (
            1, 512, 2000, 2, 1)
    else:
        assert (h.tdnn_dim, h.tdnn_kernel, h.tdnn_dilation) == ([512, 512, 512, 512, 1500], [5, 3, 3, 1, 1],
                                                                [1, 2, 3, 1, 1])
        assert (h.embed_dim, h.margin, h.scale, cfg.data.crop_samples, cfg.data.min_seconds) == (512, 0.4, 30.0,
                                                                                                 128_000, 2.0)
