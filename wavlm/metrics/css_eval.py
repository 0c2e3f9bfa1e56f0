"""LibriCSS utterance-wise evaluation (Chen et al. 2020, Section 3.3.2; github.com/chenzhuo1011/libri_css).

The protocol, as the official scripts implement it: every reference utterance of a session is cut out at its
ground-truth boundaries (meeting_info.txt), the separation system turns each cut into its output streams (two
for the released baselines, `utterance_<i>_0.wav` and `utterance_<i>_1.wav`), every stream is recognised, and
per utterance the stream whose transcript has the fewest word errors against the reference is kept
(`asr/python/get_wer.py`: `err = min(err_0, err_1)`; the README: "when multiple separation results are generated
for one input utterance mixture, the transcription result with the lowest WER is picked"). The WER of a
condition is the sum of those minimum errors over the sum of reference words. It is an oracle selection: it
needs the reference, and no energy or SNR criterion is involved. (The official scoring also tunes the decoder's
LM weight on session0 and applies it to all sessions; that belongs to the recogniser, not to this module.)

    cut_utterances(streams, segments, sr)      -> {utt: [stream_0 cut, stream_1 cut, ...]}
    select_stream(candidates, reference, recognise) -> Choice (index, hypothesis, alignment)
    pick_lowest_wer(hypotheses, reference)     -> Choice, for streams already recognised
    utterance_wise_wer(candidates, references, recognise) -> Result (per-utterance choices, WER)

The official pipeline cuts the 7-channel mixture and separates each cut (utterance-wise separation); a
continuous separation system's session-long output streams are cut the same way. `cut_utterances` does both:
a stream is any array whose first axis is time ([S] or [S, C]).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from wavlm.metrics.wer import Alignment, WerError, align

log = logging.getLogger(__name__)

TOLERANCE_S = 0.01  # a segment may end this much after its stream (rounding of the reference times)
Recogniser = Callable[[np.ndarray], str]


class CSSEvalError(ValueError):
    """Bad evaluation input; the message names the utterance or stream."""


def _as_streams(streams: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """A 2-D array is [K, S] (K streams); a sequence holds one array per stream, time first."""
    if isinstance(streams, np.ndarray):
        if streams.ndim == 1:
            return [streams]
        if streams.ndim != 2:
            raise CSSEvalError(f"streams: expected [K, S] or a list of arrays, got an array of shape {streams.shape}")
        return list(streams)
    out = [np.asarray(s) for s in streams]
    if not out:
        raise CSSEvalError("streams: none given")
    return out


def cut_utterances(streams: Sequence[np.ndarray] | np.ndarray, segments: Mapping[str, tuple[float, float]],
                   sr: int = 16000) -> dict[str, list[np.ndarray]]:
    """Cut every stream at each utterance's reference boundaries (seconds; samples rounded as Kaldi's
    segments are read elsewhere here). Returns utt -> one cut per stream, in stream order."""
    ss = _as_streams(streams)
    n = min(s.shape[0] for s in ss)
    if any(s.shape[0] != n for s in ss):
        log.warning("streams differ in length (%s samples); cutting within the shortest",
                    ", ".join(str(s.shape[0]) for s in ss))
    out: dict[str, list[np.ndarray]] = {}
    for utt, (start, end) in segments.items():
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
            raise CSSEvalError(f"utterance {utt}: bad segment {start} {end} (need 0 <= start < end)")
        a, b = int(round(start * sr)), int(round(end * sr))
        if b > n + int(TOLERANCE_S * sr):
            raise CSSEvalError(f"utterance {utt}: segment ends at {end:.3f} s, after the end of the streams "
                               f"({n / sr:.3f} s)")
        b = min(b, n)
        if b <= a:
            raise CSSEvalError(f"utterance {utt}: segment {start:.3f}-{end:.3f} s is empty at {sr} Hz")
        out[utt] = [s[a:b] for s in ss]
    return out


@dataclass(frozen=True)
class Choice:
    """The stream kept for one utterance: its index, its transcript and its alignment to the reference."""

    index: int
    hypothesis: str
    alignment: Alignment
    errors_per_stream: tuple[int, ...]

    @property
    def errors(self) -> int:
        return self.alignment.errors

    @property
    def n_ref(self) -> int:
        return self.alignment.n_ref


def pick_lowest_wer(hypotheses: Sequence[str], reference: str | Sequence[str], utt: str = "") -> Choice:
    """The hypothesis with the fewest word errors against the reference (the first of equals)."""
    what = f"utterance {utt}" if utt else "utterance"
    if not hypotheses:
        raise CSSEvalError(f"{what}: no stream hypotheses to choose from")
    ref = reference.split() if isinstance(reference, str) else list(reference)
    if not ref:
        raise CSSEvalError(f"{what}: empty reference")
    try:
        aligns = [align(ref, h.split()) for h in hypotheses]
    except WerError as e:
        raise CSSEvalError(f"{what}: {e}") from None
    errs = tuple(a.errors for a in aligns)
    best = int(np.argmin(errs))
    return Choice(best, " ".join(hypotheses[best].split()), aligns[best], errs)


def select_stream(candidates: Sequence[np.ndarray], reference: str | Sequence[str], recognise: Recogniser,
                  utt: str = "") -> Choice:
    """Recognise every stream of one utterance and keep the one with the lowest WER (the LibriCSS protocol)."""
    if not candidates:
        raise CSSEvalError(f"utterance {utt}: no streams" if utt else "no streams")
    return pick_lowest_wer([recognise(c) for c in candidates], reference, utt)


@dataclass
class Result:
    """Utterance-wise WER of one condition (or any set of utterances)."""

    choices: dict[str, Choice] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.choices.values())

    @property
    def n_ref(self) -> int:
        return sum(c.n_ref for c in self.choices.values())

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / self.n_ref if self.n_ref else 0.0

    def stream_counts(self) -> list[int]:
        """How often each stream index was kept."""
        k = max((len(c.errors_per_stream) for c in self.choices.values()), default=0)
        return [sum(c.index == i for c in self.choices.values()) for i in range(k)]

    def summary(self) -> str:
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.n_ref} ], {len(self.choices)} utterances, "
                f"stream kept {self.stream_counts()}")


def utterance_wise_wer(candidates: Mapping[str, Sequence[np.ndarray]], references: Mapping[str, str],
                       recognise: Recogniser) -> Result:
    """`select_stream` for every utterance of `candidates` (e.g. from `cut_utterances`); WER = sum of the
    kept streams' errors / reference words."""
    missing = [u for u in candidates if u not in references]
    if missing:
        raise CSSEvalError(f"{len(missing)} utterances have no reference transcript, e.g. {missing[0]}")
    res = Result()
    for utt, cands in candidates.items():
        res.choices[utt] = select_stream(cands, references[utt], recognise, utt)
    return res
