"""Train an LM for decoding (wavlm/tasks/lm.py): espnet2 TransformerLM or LSTM over the ASR model's token
units (fused into the CTC beam search), or a word-level Transformer LM (rescores the lexicon beam's N-best).

    python -m wavlm.bin.train_lm --config conf/lm_transformer.yaml --exp_dir exp/lm \\
        data.tokenizer=exp/units_char "data.train=[librispeech-lm-norm.txt]" "data.valid=[kaldi:data/dev_clean/text]"
    python -m wavlm.bin.train_lm --config conf/lm_word_transformer.yaml --exp_dir exp/lm_word \\
        "data.train=[librispeech-lm-norm.txt]" "data.valid=[kaldi:data/dev_clean/text]"

A word LM writes its word list to <exp_dir>/tokens.txt. Resumes from the newest checkpoint in --exp_dir.
"""
from __future__ import annotations

import functools
import sys

from wavlm.tasks.lm import LmConfig, LmTask
from wavlm.train.run import parser, run


def main(argv: list[str] | None = None) -> int:
    exp_dir = parser(__doc__).parse_known_args(argv)[0].exp_dir
    return run(functools.partial(LmTask, exp_dir=exp_dir), LmConfig, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
