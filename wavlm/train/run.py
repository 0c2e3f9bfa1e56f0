"""Start a training run from the command line: config + overrides, torchrun/DDP, exp dir records.

Every task CLI (`python -m wavlm.bin.pretrain`, ...) is `run(TaskClass, ConfigClass, argv)`.
The exp dir keeps the resolved config, the command line, the git revision and package versions.
"""
from __future__ import annotations

import argparse
import logging
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from wavlm.bin import setup_logging
from wavlm.config import ConfigError, dump, load
from wavlm.data.datadir import atomic_write_text
from wavlm.train import distributed
from wavlm.train.trainer import Trainer

log = logging.getLogger(__name__)

PACKAGES = ("torch", "numpy", "kaldiio", "sentencepiece", "espnet", "transformers", "faiss-cpu", "wavlm")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", required=True, help="YAML config")
    p.add_argument("--exp_dir", required=True, help="where checkpoints, logs and tensorboard go")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value (YAML values)")
    return p


def record_run(exp_dir: Path, cfg: Any) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp_dir / "config.yaml", dump(cfg))
    atomic_write_text(exp_dir / "cmd.txt", shlex.join([sys.executable, *sys.argv]) + "\n")
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown (not a git checkout)"
    lines = [f"git {rev}", f"python {platform.python_version()}"]
    for pkg in PACKAGES:
        try:
            lines.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    atomic_write_text(exp_dir / "versions.txt", "\n".join(lines) + "\n")


def run(task_cls: type, cfg_cls: type, argv: list[str] | None = None, description: str = "") -> int:
    setup_logging()
    args = parser(description).parse_args(argv)
    try:
        cfg = load(cfg_cls, args.config, args.overrides)
    except ConfigError as e:  # the message names the file, key or override: no traceback needed
        log.error("%s", e)
        return 2
    d = distributed.init(args.device)
    exp_dir = Path(args.exp_dir)
    if d.is_main:
        record_run(exp_dir, cfg)
        fh = logging.FileHandler(exp_dir / "train.log")
        fh.setFormatter(logging.getLogger().handlers[0].formatter)
        logging.getLogger().addHandler(fh)
    task = task_cls(cfg, d.device)
    trainer = Trainer(cfg.trainer, task, task.build_model(), exp_dir, d)
    try:
        trainer.train()
    finally:
        distributed.cleanup()
    return 0
