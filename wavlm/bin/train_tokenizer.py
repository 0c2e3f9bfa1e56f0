"""Train the ASR output units (sentencepiece) on the transcripts of a data dir.

    python -m wavlm.bin.train_tokenizer --text data/train_clean_100/text --out exp/units_char
    python -m wavlm.bin.train_tokenizer --text data/pr/train_clean_100/text --out exp/units_phone --model_type word
    python -m wavlm.bin.train_tokenizer --text data/train_960/text --out exp/units_bpe5000 --model_type bpe \\
        --vocab_size 5000

Writes OUT/spm.model, OUT/spm.vocab and OUT/tokens.txt (`<blank>`, the pieces, `<sos/eos>`). Characters
(the default) follow fairseq's letter units: every character of the transcripts plus the word boundary `▁`.
Skipped when OUT/spm.model is newer than the text.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.data.datadir import read_table
from wavlm.data.tokenizer import MODEL_NAME, train_tokenizer

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, nargs="+", help="Kaldi text file(s): `utt WORD WORD ...`")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--model_type", default="char", choices=["char", "bpe", "unigram", "word"],
                   help="word: each whitespace-separated token is a unit (phone transcripts)")
    p.add_argument("--vocab_size", type=int, default=5000, help="pieces for bpe/unigram (upper bound for char)")
    args = p.parse_args(argv)
    setup_logging()
    model = Path(args.out) / MODEL_NAME
    if model.is_file() and all(model.stat().st_mtime > Path(t).stat().st_mtime for t in args.text):
        log.info("%s is up to date", model)
        return
    texts = [line for t in args.text for line in read_table(t, allow_empty_value=True).rows.values()]
    train_tokenizer(texts, args.out, args.model_type, args.vocab_size)


if __name__ == "__main__":
    main()
