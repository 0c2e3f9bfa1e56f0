"""Kaldi data dirs from a corpus in its real on-disk layout (what recipes' local/data.sh call).

    python -m wavlm.bin.prepare_data librispeech --root /data/LibriSpeech --data data [--subsets dev-clean ...]

A data dir that is complete and made from unchanged sources is left as it is.
"""
from __future__ import annotations

import argparse
import logging
import sys

from wavlm.bin import setup_logging
from wavlm.data.corpora import librispeech
from wavlm.data.corpora.common import CorpusError
from wavlm.data.datadir import DataDirError

log = logging.getLogger("wavlm.prepare_data")

CORPORA = {"librispeech": librispeech}


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=sorted(CORPORA))
    p.add_argument("--root", required=True, help="the corpus directory")
    p.add_argument("--data", default="data", help="where the data dirs go")
    p.add_argument("--subsets", nargs="*", default=None, help="only these subsets (default: all present)")
    a = p.parse_args(argv)
    try:
        CORPORA[a.corpus].prepare(a.root, a.data, a.subsets)
    except (CorpusError, DataDirError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
