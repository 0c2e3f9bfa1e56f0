"""Simulate a split of Libri2Mix (16 kHz, max mode) by LibriMix's rules, in LibriMix's layout (see
wavlm.data.librimix_sim), for when the real corpus is not available.

    python -m wavlm.bin.simulate_librimix --librispeech data/dev_clean --musan data/musan_noise --out /data/librimix \\
        --split dev --num_mixtures 3000 --seed 0 --nj 8 [--max_offset 0] [--csv_columns 7] [--overwrite]

--librispeech: a Kaldi data dir of LibriSpeech utterances, a LibriSpeech subset directory, or the LibriSpeech root
(its subset for the split: train-100 <- train-clean-100, train-360 <- train-clean-360, dev <- dev-clean,
test <- test-clean). --musan: a data dir of noises (data/musan_noise), MUSAN's root (noise/ is used) or a directory
of wavs. Writes OUT/Libri2Mix/wav16k/max/<split>/{mix_both,mix_clean,s1,s2,noise}/<ID>.wav and
OUT/Libri2Mix/wav16k/max/metadata/mixture_<split>_{mix_both,mix_clean,gains}.csv. The same seed gives the same files
for any --nj; a rerun continues an interrupted one; a complete split with the same options is skipped.
Then: `python -m wavlm.bin.prepare_data librimix --root OUT --data data`.
"""
from __future__ import annotations

import argparse
import sys

from wavlm.bin import run_main
from wavlm.data.corpora.librimix import SPLITS
from wavlm.data.librimix_sim import simulate_librimix


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--librispeech", required=True, help="LibriSpeech data dir, subset directory or root")
    p.add_argument("--musan", required=True, help="noise data dir, MUSAN root or directory of noise wavs")
    p.add_argument("--out", required=True, help="storage dir: Libri2Mix/ is written under it")
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--num_mixtures", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=1, help="processes")
    p.add_argument("--max_offset", type=float, default=0.0,
                   help="delay the second source by up to this many seconds (LibriMix: 0, both start together)")
    p.add_argument("--csv_columns", type=int, choices=(6, 7), default=7,
                   help="metadata header: 7 with original_mixture_ID (current LibriMix), 6 without (older)")
    p.add_argument("--overwrite", action="store_true", help="remove the split first (also when made otherwise)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def run(a: argparse.Namespace) -> None:
    simulate_librimix(a.librispeech, a.musan, a.out, a.split, a.num_mixtures, a.seed, a.nj, a.max_offset,
                      a.csv_columns, a.overwrite)


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
