"""Shared fixtures: repository paths, an environment with tools/venv first on PATH, tiny data dirs."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]

# A tiny WavLM (Base layout: group-norm CNN, post-LN, gated relative bias) for fast model tests.
SMALL_MODEL = dict(
    conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
    encoder_layers=2,
    encoder_embed_dim=64,
    encoder_ffn_embed_dim=128,
    encoder_attention_heads=4,
    conv_pos=16,
    conv_pos_groups=4,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long end-to-end tests (recipes)")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    """Environment for running shell scripts: this interpreter's bin dir first on PATH, C locale."""
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e['PATH']}"
    e["LC_ALL"] = "C"
    e["PYTHONUNBUFFERED"] = "1"
    return e


def run(cmd: list[str] | str, env: dict[str, str], cwd: Path | str | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command, returning stdout/stderr as text; on unexpected failure show both."""
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       shell=isinstance(cmd, str))
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def write_wav(path: Path, seconds: float, sr: int = 16000, seed: int = 0, channels: int = 1) -> None:
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((int(seconds * sr), channels)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x if channels > 1 else x[:, 0], sr)


def make_data_dir(d: Path, spk_utts: dict[str, int], seconds: float = 0.5, text: bool = True) -> Path:
    """A valid data dir with speakers `spk` having `n` utterances `spk-000i` of random audio."""
    d.mkdir(parents=True, exist_ok=True)
    wav, u2s, txt = [], [], []
    for spk, n in spk_utts.items():
        for i in range(n):
            utt = f"{spk}-{i:04d}"
            p = d / "wavs" / f"{utt}.wav"
            write_wav(p, seconds, seed=zlib.crc32(utt.encode()) % 1000)  # not hash(): salted per process
            wav.append(f"{utt} {p}")
            u2s.append(f"{utt} {spk}")
            txt.append(f"{utt} HELLO WORLD {i}")
    for name, lines in (("wav.scp", wav), ("utt2spk", u2s), ("text", txt)):
        if name == "text" and not text:
            continue
        (d / name).write_text("".join(f"{x}\n" for x in sorted(lines, key=lambda s: s.split()[0].encode())))
    spk2utt = {}
    for line in sorted(u2s, key=lambda s: s.encode()):
        u, s = line.split()
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return d


def recipe_sandbox(tmp_path: Path, recipe: str) -> Path:
    """A copy of egs/<recipe> made of symlinks under tmp_path, so a recipe run writes its data/, dump/
    and exp/ there instead of into the source tree. Returns the recipe directory to run from."""
    top = tmp_path / "repo"
    for name in ("tools", "utils", "conf", "wavlm"):
        if not (top / name).exists():
            top.mkdir(parents=True, exist_ok=True)
            (top / name).symlink_to(ROOT / name)
    src = ROOT / "egs" / recipe
    dst = top / "egs" / recipe
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in ("data", "dump", "exp"):
            continue
        if not (dst / item.name).exists():
            (dst / item.name).symlink_to(item.resolve() if item.name != "utils" else top / "utils")
    return dst


HF_GATED_BIAS = ("rel_attn_embed", "gru_rel_pos_const")  # Hugging Face's names of the bias table and the gates' a


def randomise(model: torch.nn.Module, seed: int = 0, unit: tuple[str, ...] = HF_GATED_BIAS) -> None:
    """Every parameter random at sane scales: norm weights near 1, the parameters whose names contain one of `unit`
    (by default the relative-bias table and grep_a, so that the gated bias matters) standard normal, other vectors
    0.1 x normal, matrices normal / sqrt(fan-in)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * r)
            elif any(u in name for u in unit):
                p.copy_(r)
            elif p.dim() <= 1:
                p.copy_(0.1 * r)
            else:
                p.copy_(r / p[0].numel() ** 0.5)
