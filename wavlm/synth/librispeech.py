"""Synthetic LibriSpeech (openslr 12) plus its LM text (openslr 11) and Libri-light's limited supervision set.

Layout written under OUT:
  LibriSpeech/{SPEAKERS.TXT,CHAPTERS.TXT}
  LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac and <spk>-<chapter>.trans.txt
  librispeech_lm/librispeech-lm-norm.txt     LM training sentences (same grammar, upper case)
  librispeech_lm/librispeech-vocab.txt       the word list (one word per line)
  librispeech_lm/4-gram.arpa.gz              word 4-gram over the LM text (interpolated modified Kneser-Ney,
                                             as lmplz built the official one; wavlm.decode.ngram)
  librispeech_lm/librispeech-lexicon.txt     pronunciations, `WORD<TAB>PH1 PH2 ...` (espeak-ng phones with
                                             ARPAbet-style stress digits; a few words have two)
  librispeech_finetuning/1h/{0..5}/{clean,other}/<spk>/<chapter>/... and 9h/{clean,other}/...
Speakers are disjoint across subsets, as in the real corpus; "other" subsets get a random channel
(EQ, gain, noise) per chapter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.decode.ngram import build_arpa
from wavlm.synth.common import rng_for, write_audio, write_lines
from wavlm.synth.effects import apply_channel, random_channel
from wavlm.synth.speech import make_voices
from wavlm.synth.utterances import Speaker, duration, sentences, speak, unique_ids
from wavlm.synth.vocab import VOCABULARY, pronunciations

logger = logging.getLogger(__name__)

ALL_SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
DEFAULT_SUBSETS = ("train-clean-100", "dev-clean", "test-clean")


@dataclass
class LibriSpeechConfig:
    subsets: tuple[str, ...] = DEFAULT_SUBSETS
    num_speakers: int = 12  # per training subset
    num_eval_speakers: int = 4  # per dev/test subset
    chapters_per_speaker: int = 2
    utts_per_speaker: int = 10
    lm_sentences: int = 2000
    finetuning: bool = True
    num_workers: int = 2


@dataclass
class Chapter:
    subset: str
    speaker: Speaker
    chapter: int
    texts: list[str]
    other: bool


def write_chapter(root: Path, ch: Chapter, audios: list[np.ndarray], seed: int) -> float:
    """Write one chapter dir (flac + trans.txt); returns its minutes of audio."""
    d = root / ch.speaker.id / str(ch.chapter)
    rng = rng_for(seed, "channel", ch.subset, ch.speaker.id, ch.chapter)
    chan = random_channel(rng) if ch.other else None
    lines = []
    for i, (text, x) in enumerate(zip(ch.texts, audios, strict=True)):
        uid = f"{ch.speaker.id}-{ch.chapter}-{i:04d}"
        if chan is not None:
            x = apply_channel(x, chan, rng)
        write_audio(d / f"{uid}.flac", x)
        lines.append(f"{uid} {text}")
    write_lines(d / f"{ch.speaker.id}-{ch.chapter}.trans.txt", lines)
    return sum(duration(x) for x in audios) / 60


def synth_chapters(chapters: list[Chapter], seed: int, key: str, num_workers: int) -> list[list[np.ndarray]]:
    items = [(t, ch.speaker.voice) for ch in chapters for t in ch.texts]
    audios = speak(items, rng_for(seed, key, "pads"), num_workers)
    out, k = [], 0
    for ch in chapters:
        out.append(audios[k : k + len(ch.texts)])
        k += len(ch.texts)
    return out


def plan(cfg: LibriSpeechConfig, seed: int) -> tuple[list[Chapter], dict[str, list[Speaker]]]:
    rng = rng_for(seed, "librispeech", "plan")
    n_per = {s: cfg.num_speakers if s.startswith("train") else cfg.num_eval_speakers for s in cfg.subsets}
    voices = make_voices(sum(n_per.values()), rng)
    spk_ids = unique_ids(rng, len(voices), 19, 9000)
    taken: set[int] = set()
    chapters: list[Chapter] = []
    speakers: dict[str, list[Speaker]] = {}
    k = 0
    for subset in cfg.subsets:
        speakers[subset] = []
        for _ in range(n_per[subset]):
            spk = Speaker(str(spk_ids[k]), voices[k])
            k += 1
            speakers[subset].append(spk)
            ch_ids = unique_ids(rng, cfg.chapters_per_speaker, 1000, 300000, taken)
            n_utts = np.array_split(np.arange(cfg.utts_per_speaker), cfg.chapters_per_speaker)
            for ch_id, idx in zip(sorted(ch_ids), n_utts, strict=True):
                chapters.append(Chapter(subset, spk, ch_id, sentences(rng, len(idx)), "other" in subset))
    return chapters, speakers


def generate(out: Path, cfg: LibriSpeechConfig, seed: int) -> None:
    bad = [s for s in cfg.subsets if s not in ALL_SUBSETS]
    if bad:
        raise ValueError(f"unknown LibriSpeech subsets {bad}; choose from {list(ALL_SUBSETS)}")
    root = out / "LibriSpeech"
    chapters, speakers = plan(cfg, seed)
    logger.info("LibriSpeech: %d chapters, %d utterances", len(chapters), sum(len(c.texts) for c in chapters))
    audios = synth_chapters(chapters, seed, "librispeech", cfg.num_workers)
    minutes: dict[str, float] = {}
    chapter_rows = []
    for ch, aud in zip(chapters, audios, strict=True):
        m = write_chapter(root / ch.subset, ch, aud, seed)
        minutes[ch.speaker.id] = minutes.get(ch.speaker.id, 0.0) + m
        chapter_rows.append(
            f"{ch.chapter:<7}| {ch.speaker.id:<5}| {m:6.2f}| {ch.subset:<17}| {ch.chapter % 9973:<5}|"
            f" {ch.chapter % 7919:<6}| Chapter {ch.chapter % 50 + 1}| Synthetic Book {ch.chapter % 7919}"
        )
    spk_rows = [
        f"{s.id:<5}| {s.sex} | {subset:<17}| {minutes[s.id]:5.2f} | Synthetic Reader {s.id} ({s.voice.name})"
        for subset, spks in speakers.items()
        for s in spks
    ]
    write_lines(
        root / "SPEAKERS.TXT",
        [
            "; Synthetic LibriSpeech speakers (espeak-ng voices), in the format of the real SPEAKERS.TXT",
            "; MINUTES are the minutes of audio of the speaker in this corpus",
            ";ID  |SEX| SUBSET           |MINUTES| NAME",
            *spk_rows,
        ],
    )
    write_lines(
        root / "CHAPTERS.TXT",
        [
            "; Synthetic LibriSpeech chapters, in the format of the real CHAPTERS.TXT",
            ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE",
            *chapter_rows,
        ],
    )
    write_lm(out / "librispeech_lm", cfg.lm_sentences, seed)
    train_spk = [s for subset, spks in speakers.items() if subset.startswith("train") for s in spks]
    if cfg.finetuning and train_spk:
        write_finetuning(out / "librispeech_finetuning", train_spk, seed, cfg.num_workers)


def write_lm(d: Path, n: int, seed: int) -> None:
    """The LM resources of openslr 11 that the recipes use: text, word list, 4-gram ARPA, lexicon."""
    write_lines(d / "librispeech-lm-norm.txt", sentences(rng_for(seed, "lm"), n, max_clauses=3))
    write_lines(d / "librispeech-vocab.txt", list(VOCABULARY))
    build_arpa(d / "librispeech-lm-norm.txt", d / "4-gram.arpa.gz", order=4, extra_words=VOCABULARY)
    write_lines(d / "librispeech-lexicon.txt", [f"{w}\t{' '.join(ph)}" for w, ph in pronunciations(list(VOCABULARY))])


FT_LEAVES = tuple(f"1h/{k}/{c}" for k in range(6) for c in ("clean", "other")) + ("9h/clean", "9h/other")


def write_finetuning(
    root: Path,
    speakers: list[Speaker],
    seed: int,
    num_workers: int,
    speakers_per_leaf: int = 2,
    utts_per_speaker: int = 2,
) -> None:
    """Libri-light limited supervision layout (tiny): each leaf holds a few LibriSpeech-style chapters."""
    rng = rng_for(seed, "finetuning")
    taken: set[int] = set()
    chapters: list[tuple[str, Chapter]] = []
    for leaf in FT_LEAVES:
        idx = rng.choice(len(speakers), size=min(speakers_per_leaf, len(speakers)), replace=False)
        for i in sorted(idx):
            ch_id = unique_ids(rng, 1, 300000, 400000, taken)[0]
            chapters.append(
                (
                    leaf,
                    Chapter(
                        leaf, speakers[i], ch_id, sentences(rng, utts_per_speaker), leaf.endswith("other")
                    ),
                )
            )
    audios = synth_chapters([c for _, c in chapters], seed, "finetuning", num_workers)
    for (leaf, ch), aud in zip(chapters, audios, strict=True):
        write_chapter(root / leaf, ch, aud, seed)
