"""Fine-tune WavLM for ASR with CTC (wavlm/tasks/asr.py).

    python -m wavlm.bin.train_asr --config conf/finetune_100h.yaml --exp_dir exp/asr_100h \\
        model.init=exp/wavlm_base/checkpoint_best.pt data.tokenizer=exp/units_char [key=value ...]
    torchrun --nproc_per_node 8 -m wavlm.bin.train_asr ...

Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import sys

from wavlm.tasks.asr import AsrConfig, AsrTask
from wavlm.train.run import run


def main(argv: list[str] | None = None) -> int:
    return run(AsrTask, AsrConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
