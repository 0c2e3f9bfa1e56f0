"""Spell the words of a word list in the ASR units: the lexicon of the lexicon-constrained beam search, built
as fairseq builds it for letter units (`WORD<TAB>W O R D`), from the n-gram's own vocabulary so that every LM
word can be decoded.

    python -m wavlm.bin.make_lexicon --words 4-gram.arpa.gz --units exp/units_char --out exp/lexicon_char.txt

--words: an ARPA file (its 1-grams), a vocabulary (one word a line) or `WORD COUNT` lines. Words with
characters outside the units are left out with a count (--on_oov skip) or are an error naming the line.
"""
from __future__ import annotations

import argparse
import logging
import sys

from wavlm.bin import setup_logging
from wavlm.data.tokenizer import Tokenizer, TokenizerError
from wavlm.decode.lexicon import LexiconError, build_spelling_lexicon

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.make_lexicon", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", required=True, help="ARPA file, vocabulary or word counts")
    p.add_argument("--units", required=True, help="units dir or spm.model of wavlm.bin.train_tokenizer")
    p.add_argument("--out", required=True, help="lexicon file to write")
    p.add_argument("--on_oov", choices=("skip", "error"), default="skip")
    args = p.parse_args(argv)
    setup_logging()
    try:
        tok = Tokenizer(args.units)
        letters = {t for t in tok.tokens if not t.startswith("<") and t != "▁"}
        build_spelling_lexicon(args.words, letters, args.out, on_oov=args.on_oov)
    except (LexiconError, TokenizerError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
