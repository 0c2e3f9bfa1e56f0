"""Train a token-level LM (espnet2 TransformerLM or LSTM) for CTC beam search (wavlm/tasks/lm.py).

    python -m wavlm.bin.train_lm --config conf/lm_transformer.yaml --exp_dir exp/lm \\
        data.tokenizer=exp/units_char "data.train=[librispeech-lm-norm.txt]" "data.valid=[kaldi:data/dev_clean/text]"

Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import sys

from wavlm.tasks.lm import LmConfig, LmTask
from wavlm.train.run import run


def main(argv: list[str] | None = None) -> int:
    return run(LmTask, LmConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
