"""Pre-train WavLM (masked prediction + denoising).

    python -m wavlm.bin.pretrain --config conf/pretrain.yaml --exp_dir exp/wavlm_base [key=value ...]
    torchrun --nproc_per_node 8 -m wavlm.bin.pretrain --config ... --exp_dir ...

Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import sys

from wavlm.tasks.pretrain import PretrainConfig, PretrainTask
from wavlm.train.run import run


def main(argv: list[str] | None = None) -> int:
    return run(PretrainTask, PretrainConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
