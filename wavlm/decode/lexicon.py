"""Lexicons: reading `librispeech-lexicon.txt`-style files, spelling an LM's word list in letter units, and
checking spellings against the ASR model's units.

A lexicon line is `WORD U1 U2 ...` (tab or spaces between the fields): letters for a spelling lexicon
(`HELLO H E L L O`), phones for a pronunciation lexicon (`HELLO HH AH0 L OW1`, as in the official
`librispeech-lexicon.txt`). A word with several pronunciations has several lines and keeps them all.

The spelling lexicon for letter units is built from the LM's word list, as fairseq builds its lexicon from
the LM vocabulary (`WORD W O R D |` there, with `|` ending each word). Our units mark a word boundary with
sentencepiece's `▁` *before* each word, so spellings hold the letters only and the decoder lets `▁` stand
between words (see wavlm.decode.flashlight).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from wavlm.data.datadir import atomic_write_text
from wavlm.decode.ngram import BOS, EOS, UNK, ArpaError, arpa_unigrams, open_text

log = logging.getLogger(__name__)

ON_OOV = ("error", "skip")


class LexiconError(ValueError):
    """A lexicon or word list that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    word: str
    units: tuple[str, ...]
    line: int  # 1-based line of the file it came from


def _lines(path: str | os.PathLike, what: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines; missing, unreadable or empty is a LexiconError."""
    try:
        with open_text(path) as f:
            rows = [(i, s) for i, line in enumerate(f, 1) if (s := line.strip())]
    except ArpaError as e:
        raise LexiconError(f"{path}: no such {what} file") from e
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise LexiconError(f"{path}: unreadable {what} file ({e})") from None
    if not rows:
        raise LexiconError(f"{path}: empty {what} file")
    return rows


def read_lexicon(path: str | os.PathLike) -> list[Entry]:
    """Every `WORD U1 U2 ...` line of a lexicon, in file order (`.gz` read too); a line with a word and no
    units is a LexiconError naming the file and line."""
    entries = []
    for i, s in _lines(path, "lexicon"):
        word, *units = s.split()
        if not units:
            raise LexiconError(f"{path}:{i}: expected 'WORD UNIT1 UNIT2 ...', got {s[:80]!r} (no spelling)")
        entries.append(Entry(word, tuple(units), i))
    return entries


def read_words(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(word, line) of an LM's word list: an ARPA file's 1-grams (without `<s>`, `</s>`, `<unk>`), or a text
    file of `WORD` or `WORD COUNT` lines (`librispeech-vocab.txt`, a word-count file)."""
    path = Path(path)
    if ".arpa" in path.suffixes:
        try:
            return [(w, i) for w, i in arpa_unigrams(path) if w not in (BOS, EOS, UNK)]
        except ArpaError as e:
            raise LexiconError(str(e)) from None
    words = []
    for i, s in _lines(path, "word list"):
        fields = s.split()
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
            raise LexiconError(f"{path}:{i}: expected 'WORD' or 'WORD COUNT', got {s[:80]!r}")
        words.append((fields[0], i))
    return words


def spell(words: Iterable[tuple[str, int]]) -> list[Entry]:
    """The letter spelling of each (word, line): `HELLO` -> H E L L O."""
    return [Entry(w, tuple(w), i) for w, i in words]


def check_units(entries: list[Entry], units: Collection[str], source: str | os.PathLike,
                on_oov: str = "error") -> list[Entry]:
    """The entries whose units are all in `units`. An entry with other units is a LexiconError naming
    `source`, its line and the units (on_oov="error"), or is left out with a warning that counts them
    (on_oov="skip")."""
    if on_oov not in ON_OOV:
        raise ValueError(f"on_oov must be one of {ON_OOV}, got {on_oov!r}")
    units = set(units)
    kept, skipped = [], []
    for e in entries:
        bad = [u for u in e.units if u not in units]
        if not bad:
            kept.append(e)
        elif on_oov == "error":
            raise LexiconError(f"{source}:{e.line}: word {e.word!r} is spelled with {''.join(sorted(set(bad)))!r}, "
                               f"outside the model's units")
        else:
            skipped.append(e)
    if skipped:
        log.warning("%s: left out %d of %d entries spelled outside the model's units (first: %s)", source,
                    len(skipped), len(entries), ", ".join(f"{e.word} (line {e.line})" for e in skipped[:5]))
    if not kept:
        raise LexiconError(f"{source}: no entry is spelled in the model's units")
    return kept


def write_lexicon(path: str | os.PathLike, entries: Iterable[Entry]) -> Path:
    """`WORD<TAB>U1 U2 ...` lines, atomically (the official lexicon's layout)."""
    atomic_write_text(path, "".join(f"{e.word}\t{' '.join(e.units)}\n" for e in entries))
    return Path(path)


def build_spelling_lexicon(words: str | os.PathLike, units: Collection[str], out: str | os.PathLike,
                           on_oov: str = "skip") -> Path:
    """Spell every word of the word list `words` (see read_words) in letter `units` and write the lexicon to
    `out`; words with letters outside the units: see check_units."""
    entries = check_units(spell(read_words(words)), units, words, on_oov)
    path = write_lexicon(out, entries)
    log.info("%s: %d words spelled in %d units", path, len(entries), len(units))
    return path
