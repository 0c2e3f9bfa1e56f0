"""Phone transcripts from a pronunciation lexicon, as s3prl's SUPERB phoneme recognition (PR) builds them.

The lexicon is in `librispeech-lexicon.txt` format: `WORD<TAB or spaces>PH1 PH2 ...`, one pronunciation a
line, a word with several pronunciations on several lines (`READ R IY1 D`, `READ R EH1 D`). Files are read
with wavlm.decode.lexicon.read_lexicon (`.gz` too; a word without phones is an error naming file:line).

As s3prl's PR corpus (s3prl/downstream/ctc/corpus/libriphone.py) does: the lexicon files are read in the
order given and every pronunciation of a word is kept in that order; a transcript is spelled word by word
with the FIRST pronunciation of each word (deterministic), without silence between words, keeping the
stress digits (ARPAbet `AH0`, `EH1`, `AY2`). Words are matched case-sensitively (LibriSpeech transcripts and
its official lexicon are upper case). A word missing from the lexicon is a MissingWordsError here; s3prl's
newer API maps it to `<UNK>` instead, wavlm.bin.text_to_phones leaves such utterances out (or fails).

`strip_stress` drops a trailing stress digit 0/1/2 from each phone: the 69 stress-marked ARPAbet phones of
the official lexicon become the 39 phones of CMUdict. It is exact for ARPAbet, whose phone names hold no
digits. espeak-ng mnemonics (the synthetic corpus' lexicon) have phones whose name ends in a digit
(`@2`, `t2`; `3` and `0` are phones too): there a stressed `@21` becomes `@2` correctly but an unstressed
`t2` becomes `t`; a phone that is a single character is never stripped.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from wavlm.decode.lexicon import LexiconError, read_lexicon

STRESS_DIGITS = "012"

# word -> its pronunciations (tuples of phones), in the order the lexicon files list them
Pronunciations = dict[str, list[tuple[str, ...]]]


class MissingWordsError(LexiconError):
    """Words of a transcript that the lexicon lacks; `.words` lists them (each once, in order of appearance)."""

    def __init__(self, words: Sequence[str], lexicon: Mapping[str, object], where: str = "") -> None:
        self.words = list(words)
        prefix = f"{where}: " if where else ""
        s = "s" if len(self.words) > 1 else ""
        super().__init__(f"{prefix}word{s} {' '.join(self.words)} not in the lexicon{case_hint(self.words, lexicon)}")


def case_hint(words: Iterable[str], lexicon: Mapping[str, object]) -> str:
    """A note for error messages: matching is case-sensitive, and which words the lexicon has in another case."""
    wanted = {w.upper(): w for w in words}
    other = {}
    for key in lexicon:
        w = wanted.get(key.upper())
        if w is not None and w != key:
            other.setdefault(w, key)
    found = "; the lexicon has " + ", ".join(f"{k} for {w}" for w, k in other.items()) if other else ""
    return f" (words are matched case-sensitively{found})"


def read_lexicons(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Pronunciations:
    """Every pronunciation of every word of the lexicon files, in the order of the files and of their lines
    (a pronunciation listed twice is kept once, at its first place). Malformed, missing or empty files are a
    LexiconError naming the file (and line)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise LexiconError("no lexicon file given")
    prons: Pronunciations = {}
    for path in paths:
        for e in read_lexicon(Path(path)):
            seen = prons.setdefault(e.word, [])
            if e.units not in seen:
                seen.append(e.units)
    return prons


def missing_words(words: Iterable[str], lexicon: Mapping[str, object]) -> list[str]:
    """The words not in the lexicon, each once, in order of appearance."""
    return [w for w in dict.fromkeys(words) if w not in lexicon]


def strip_stress_digit(phone: str) -> str:
    """`EH1` -> `EH`, `AH0` -> `AH`; a phone without a trailing 0/1/2, or of a single character, is unchanged."""
    return phone[:-1] if len(phone) > 1 and phone[-1] in STRESS_DIGITS else phone


def to_phones(words: Iterable[str], lexicon: Mapping[str, Sequence[Sequence[str]]], strip_stress: bool = False,
              *, where: str = "") -> list[str]:
    """The phones of `words`, word after word with the first pronunciation of each (no silence between words).

    Words missing from the lexicon are a MissingWordsError naming them (prefixed by `where`, e.g. `text:3
    (utterance X)`). `strip_stress` drops a trailing stress digit of each phone (see strip_stress_digit)."""
    words = list(words)
    missing = missing_words(words, lexicon)
    if missing:
        raise MissingWordsError(missing, lexicon, where)
    phones = [p for w in words for p in lexicon[w][0]]
    return [strip_stress_digit(p) for p in phones] if strip_stress else phones
