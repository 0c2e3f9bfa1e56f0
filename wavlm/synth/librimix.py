"""Synthetic Libri2Mix: the LibriMix simulation (wavlm.data.librimix_sim, LibriMix's rules and layout) run on the
synthetic LibriSpeech and MUSAN noise under the same OUT (wavlm.bin.synth makes them first when they are absent).

Layout under OUT: Libri2Mix/wav16k/max/{train-100,dev,test}/{mix_both,mix_clean,s1,s2,noise}/<ID>.wav and
Libri2Mix/wav16k/max/metadata/mixture_<split>_{mix_both,mix_clean,gains}.csv; train-100 from
LibriSpeech/train-clean-100, dev from dev-clean, test from test-clean, noise from musan/noise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from wavlm.data.librimix_sim import LIBRISPEECH_SUBSET, simulate_librimix

logger = logging.getLogger(__name__)

SPLITS = ("train-100", "dev", "test")
NEEDS = ("librispeech", "musan")  # the synthetic corpora this one is made from


@dataclass
class LibriMixConfig:
    num_mixtures: tuple[int, ...] = (40, 10, 10)  # train-100, dev, test
    csv_columns: int = 7  # 7: LibriMix's current csv header (with original_mixture_ID); 6: the older one
    max_offset: float = 0.0
    num_workers: int = 2


def generate(out: Path, cfg: LibriMixConfig, seed: int) -> None:
    if len(cfg.num_mixtures) != len(SPLITS):
        raise ValueError(f"num_mixtures: one count per split {list(SPLITS)}, got {list(cfg.num_mixtures)}")
    for split, n in zip(SPLITS, cfg.num_mixtures, strict=True):
        subset = out / "LibriSpeech" / LIBRISPEECH_SUBSET[split]
        if not subset.is_dir():
            raise ValueError(f"{subset}: missing; synthesise LibriSpeech with the subset {subset.name} first "
                             "(--subsets of wavlm.bin.synth)")
        simulate_librimix(subset, out / "musan" / "noise", out, split, n, seed, cfg.num_workers, cfg.max_offset,
                          cfg.csv_columns)
