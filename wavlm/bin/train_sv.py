"""Train a speaker-embedding model (WavLM or filterbanks -> ECAPA-TDNN, AAM-softmax; wavlm/tasks/sv.py).

    python -m wavlm.bin.train_sv --config conf/sv_stage1.yaml --exp_dir exp/sv_stage1 \\
        data.train=data/train model.init=/models/WavLM-Large.pt data.augment.noise_data=data/musan_noise ...
    torchrun --nproc_per_node 8 -m wavlm.bin.train_sv ...

Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import sys

from wavlm.tasks.sv import SvConfig, SvTask
from wavlm.train.run import run


def main(argv: list[str] | None = None) -> int:
    return run(SvTask, SvConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
