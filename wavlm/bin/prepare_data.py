"""Kaldi data dirs from a corpus in its real on-disk layout (what recipes' local/data.sh call).

    python -m wavlm.bin.prepare_data librispeech --root /data/LibriSpeech --data data [--subsets dev-clean ...] \
        [--combine_960]
    python -m wavlm.bin.prepare_data librispeech_finetuning --root /data/librispeech_finetuning --data data \
        [--subsets train_10min train_1h train_10h] [--speakers /data/LibriSpeech/SPEAKERS.TXT]
    python -m wavlm.bin.prepare_data librilight --root /data/librilight --data data --subsets small medium large

Corpora that cut long recordings into utterances (librilight) take --max_seconds / --min_seconds.
librispeech --combine_960 also makes train_960 (train_clean_100 + train_clean_360 + train_other_500)
when all three are prepared. librispeech_finetuning is Libri-light's limited supervision sets
(librispeech_finetuning/1h, 9h): train_10min = 1h/0, train_1h = 1h/*, train_10h = 1h/* + 9h.

A data dir that is complete and made from unchanged sources is left as it is.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys

from wavlm.bin import setup_logging
from wavlm.data.corpora import librilight, librispeech
from wavlm.data.corpora.common import CorpusError
from wavlm.data.datadir import DataDirError

log = logging.getLogger("wavlm.prepare_data")

CORPORA = {
    "librilight": librilight.prepare,
    "librispeech": librispeech.prepare,
    "librispeech_finetuning": librispeech.prepare_finetuning,
}


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", choices=sorted(CORPORA))
    p.add_argument("--root", required=True, help="the corpus directory")
    p.add_argument("--data", default="data", help="where the data dirs go")
    p.add_argument("--subsets", nargs="*", default=None, help="only these subsets (default: all present)")
    p.add_argument("--max_seconds", type=float, default=None, help="longest utterance cut from a recording")
    p.add_argument("--min_seconds", type=float, default=None, help="shortest utterance kept")
    p.add_argument("--combine_960", action="store_true",
                   help="librispeech: also make train_960 when train_clean_100, _360 and train_other_500 are prepared")
    p.add_argument("--speakers", default=None,
                   help="librispeech_finetuning: LibriSpeech's SPEAKERS.TXT, for spk2gender")
    a = p.parse_args(argv)
    prepare = CORPORA[a.corpus]
    kwargs = {k: v for k, v in (("max_seconds", a.max_seconds), ("min_seconds", a.min_seconds),
                                ("combine_960", a.combine_960 or None), ("speakers", a.speakers)) if v is not None}
    unsupported = [k for k in kwargs if k not in inspect.signature(prepare).parameters]
    if unsupported:
        p.error(f"{a.corpus} does not take --{' --'.join(unsupported)}")
    try:
        prepare(a.root, a.data, a.subsets, **kwargs)
    except (CorpusError, DataDirError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
