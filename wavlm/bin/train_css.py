"""Train a continuous-speech-separation model (STFT [+ WavLM layers] -> Conformer -> masks; wavlm/tasks/css.py).

    python -m wavlm.bin.train_css --config conf/css_wavlm.yaml --exp_dir exp/css_wavlm \\
        data.train=data/css_train data.valid=data/css_dev model.init=/models/WavLM-Large.pt

Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import sys

from wavlm.tasks.css import CssConfig, CssTask
from wavlm.train.run import run


def main(argv: list[str] | None = None) -> int:
    return run(CssTask, CssConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
