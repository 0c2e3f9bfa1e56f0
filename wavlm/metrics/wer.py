"""Word error rate: per-utterance alignment (counts from jiwer) and corpus scoring of Kaldi `text` files.

Words are compared exactly as written (no case folding or normalisation); normalise both sides first.
WER = (S + D + I) / N with N the number of reference words, SER = utterances with any error / utterances.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jiwer

from wavlm.data.datadir import c_sorted

logger = logging.getLogger(__name__)

Pair = tuple[str | None, str | None]  # (reference word, hypothesis word); None marks an insertion/deletion
GAP = "***"  # printed for the missing side of an insertion or deletion, as sclite does


class WerError(ValueError):
    """Bad scoring input; the message names the file (and line) or the utterance."""


@dataclass(frozen=True)
class Alignment:
    """Edit counts of one hypothesis against one reference, and the word-by-word alignment."""

    correct: int
    sub: int
    del_: int
    ins: int
    pairs: list[Pair] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.sub + self.del_ + self.ins

    @property
    def n_ref(self) -> int:
        return self.correct + self.sub + self.del_

    def marks(self) -> list[str]:
        """Per pair: "" (correct), "S", "D" or "I"."""
        return ["I" if r is None else "D" if h is None else "" if r == h else "S" for r, h in self.pairs]


def _check_words(words: Sequence[str], what: str) -> None:
    for w in words:
        if not isinstance(w, str) or not w or w != "".join(w.split()):
            raise WerError(f"{what}: bad word {w!r} (words are non-empty strings without whitespace)")


def align(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Minimum edit distance alignment of two word sequences (counts and chunks from jiwer)."""
    _check_words(ref, "reference")
    _check_words(hyp, "hypothesis")
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    pairs: list[Pair] = []
    for chunk in out.alignments[0]:
        r = ref[chunk.ref_start_idx : chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            pairs.extend(zip(r, h, strict=True))
        elif chunk.type == "delete":
            pairs.extend((w, None) for w in r)
        elif chunk.type == "insert":
            pairs.extend((None, w) for w in h)
        else:
            raise RuntimeError(f"jiwer returned an unknown alignment chunk type {chunk.type!r}")
    a = Alignment(out.hits, out.substitutions, out.deletions, out.insertions, pairs)
    marks = a.marks()
    if (marks.count(""), marks.count("S"), marks.count("D"), marks.count("I")) != (a.correct, a.sub, a.del_, a.ins):
        raise RuntimeError(f"jiwer's alignment disagrees with its counts for {list(ref)} / {list(hyp)}")
    return a


@dataclass(frozen=True)
class UttScore:
    utt: str
    ref: list[str]
    hyp: list[str]
    alignment: Alignment
    missing: bool = False  # no hypothesis at all (scored as all deletions with allow_missing)


@dataclass
class WerResult:
    n_utts: int
    n_ref_words: int
    n_hyp_words: int
    correct: int
    sub: int
    del_: int
    ins: int
    n_err_utts: int
    utts: list[UttScore]
    missing: list[str]  # reference utterances without a hypothesis (only with allow_missing)

    @property
    def errors(self) -> int:
        return self.sub + self.del_ + self.ins

    @property
    def wer(self) -> float:
        """Word error rate in percent."""
        return 100.0 * self.errors / self.n_ref_words if self.n_ref_words else 0.0

    @property
    def ser(self) -> float:
        """Sentence (utterance) error rate in percent."""
        return 100.0 * self.n_err_utts / self.n_utts if self.n_utts else 0.0

    def summary(self) -> str:
        """Kaldi's compute-wer lines: `%WER ...`, `%SER ...`, `Scored ...`."""
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.n_ref_words}, {self.ins} ins, {self.del_} del, "
                f"{self.sub} sub ]\n"
                f"%SER {self.ser:.2f} [ {self.n_err_utts} / {self.n_utts} ]\n"
                f"Scored {self.n_utts} sentences, {len(self.missing)} not present in hyp.\n")

    def to_dict(self) -> dict:
        return {"n_utts": self.n_utts, "n_ref_words": self.n_ref_words, "n_hyp_words": self.n_hyp_words,
                "correct": self.correct, "sub": self.sub, "del": self.del_, "ins": self.ins,
                "errors": self.errors, "wer": round(self.wer, 4), "n_err_utts": self.n_err_utts,
                "ser": round(self.ser, 4), "n_missing": len(self.missing), "missing": self.missing[:100]}


def score(refs: Mapping[str, str], hyps: Mapping[str, str], *, allow_missing: bool = False,
          ref_name: str = "reference", hyp_name: str = "hypothesis") -> WerResult:
    """Score hypothesis transcripts against references, both `{utt: "word word ..."}`.

    Every reference utterance needs a hypothesis (an empty one is fine: all deletions) unless
    `allow_missing`, which scores a missing one as all deletions and lists it in `missing`.
    A hypothesis without reference and an empty reference are errors. `ref_name`/`hyp_name`
    (usually the file paths) name the inputs in error messages.
    """
    if not refs:
        raise WerError(f"{ref_name}: no utterances to score")
    extra = c_sorted(set(hyps) - set(refs))
    if extra:
        raise WerError(f"{hyp_name}: {len(extra)} utterances are not in the reference {ref_name}, "
                       f"e.g. {extra[0]}")
    utts = c_sorted(refs)
    missing = [u for u in utts if u not in hyps]
    if missing and not allow_missing:
        raise WerError(f"{hyp_name}: {len(missing)} of {len(utts)} utterances of {ref_name} have no hypothesis, "
                       f"e.g. {missing[0]} (allow_missing / --allow_missing scores them as all deletions)")
    if missing:
        logger.warning("%s: %d of %d utterances have no hypothesis (e.g. %s); scored as all deletions",
                       hyp_name, len(missing), len(utts), missing[0])
    scores = []
    for u in utts:
        ref = refs[u].split()
        if not ref:
            raise WerError(f"{ref_name}: utterance {u} has an empty reference (WER is undefined for it)")
        hyp = hyps.get(u, "").split()
        try:
            a = align(ref, hyp)
        except WerError as e:
            raise WerError(f"utterance {u}: {e}") from None
        scores.append(UttScore(u, ref, hyp, a, missing=u not in hyps))
    return WerResult(
        n_utts=len(scores),
        n_ref_words=sum(s.alignment.n_ref for s in scores),
        n_hyp_words=sum(len(s.hyp) for s in scores),
        correct=sum(s.alignment.correct for s in scores),
        sub=sum(s.alignment.sub for s in scores),
        del_=sum(s.alignment.del_ for s in scores),
        ins=sum(s.alignment.ins for s in scores),
        n_err_utts=sum(s.alignment.errors > 0 for s in scores),
        utts=scores,
        missing=missing,
    )


def read_text(path: str | os.PathLike, *, allow_empty: bool = True) -> dict[str, str]:
    """Read a Kaldi `text` file `utt word word ...` into `{utt: "word word ..."}`.

    Unlike `wavlm.data.datadir.read_table` (strict, for data dirs) trailing whitespace and tabs are
    tolerated, since decoders write `utt ` for an empty hypothesis. A blank line, a line starting with
    whitespace (no id) and a duplicate id are errors naming file:line; with `allow_empty=False` so is
    an utterance without words.
    """
    path = Path(path)
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                raise WerError(f"{path}:{n}: empty line (expected `utt word word ...`)")
            if line[0].isspace():
                raise WerError(f"{path}:{n}: line starts with whitespace, no utterance id: {line!r}")
            parts = line.split(maxsplit=1)
            utt, words = parts[0], " ".join(parts[1].split()) if len(parts) > 1 else ""
            if utt in out:
                raise WerError(f"{path}:{n}: duplicate utterance {utt} (first on line {first[utt]})")
            if not words and not allow_empty:
                raise WerError(f"{path}:{n}: utterance {utt} has an empty transcript")
            out[utt] = words
            first[utt] = n
    return out


def format_alignment(s: UttScore) -> str:
    """sclite-like block: id, counts, and REF/HYP/Eval rows in aligned columns (`***` for a gap)."""
    a = s.alignment
    refs = [GAP if r is None else r for r, _ in a.pairs]
    hyps = [GAP if h is None else h for _, h in a.pairs]
    marks = a.marks()
    widths = [max(len(r), len(h)) for r, h in zip(refs, hyps, strict=True)]

    def row(name: str, cells: list[str]) -> str:
        return (f"{name:<5} " + " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    note = " (no hypothesis)" if s.missing else ""
    return (f"id: {s.utt}{note}\n"
            f"Scores: (#C #S #D #I) {a.correct} {a.sub} {a.del_} {a.ins}\n"
            f"{row('REF:', refs)}\n{row('HYP:', hyps)}\n{row('Eval:', marks)}\n\n")
