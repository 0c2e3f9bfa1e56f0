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
