"""NIST RTTM speaker turns: reading (validated), writing (atomic) and merging.

One turn a line (NIST RT-09 evaluation plan, appendix A):
`SPEAKER <reco> <chan> <start> <dur> <NA> <NA> <speaker> <NA> <NA>`, times in seconds. dscore and pyannote
write these 10 fields; EEND's and s3prl's make_rttm.py write 9 (one trailing <NA> fewer); both are read.
Blank lines and `;;` comments are skipped, and so are `SPKR-INFO` lines (speaker metadata that NIST
RT and DIHARD references carry; dscore skips them too). Other line types (NON-SPEECH, NOSCORE, LEXEME, ...)
change what is scored in md-eval and are refused rather than silently dropped.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wavlm.data.datadir import atomic_write_text, c_sorted

logger = logging.getLogger(__name__)

# Times read back from 3-decimal text are off by float rounding (1.1 + 0.2 != 1.3): two turns of a
# speaker count as overlapping only when they share more than this many seconds.
OVERLAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Turn:
    """A stretch [start, start + dur) seconds of `reco` in which `speaker` talks."""

    reco: str
    start: float
    dur: float
    speaker: str

    @property
    def end(self) -> float:
        return self.start + self.dur


def _sort_key(turn: Turn) -> tuple[float, str, float]:
    return turn.start, turn.speaker, turn.dur


def read_rttm(path: str | os.PathLike) -> dict[str, list[Turn]]:
    """Read an RTTM file into {reco: turns sorted by (start, speaker)}, recordings in C order.

    Raises ValueError naming `file:line` for a wrong field count, a line type other than SPEAKER/SPKR-INFO,
    a non-numeric or negative start, a duration <= 0, and for two turns of one speaker in one recording that
    overlap (naming both lines)."""
    path = Path(path)
    lines: dict[str, list[tuple[Turn, int]]] = defaultdict(list)  # reco -> (turn, line number)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith(";;") or fields[0] == "SPKR-INFO":
                continue
            where = f"{path}:{lineno}"
            if fields[0] != "SPEAKER":
                raise ValueError(f"{where}: line type {fields[0]!r} is not supported (only SPEAKER turns)")
            if len(fields) not in (9, 10):
                raise ValueError(f"{where}: expected 9 or 10 fields "
                                 f"(SPEAKER reco chan start dur <NA> <NA> speaker <NA> [<NA>]), got {len(fields)}")
            try:
                start, dur = float(fields[3]), float(fields[4])
            except ValueError:
                raise ValueError(f"{where}: start {fields[3]!r} and duration {fields[4]!r} must be numbers") from None
            if not start >= 0:  # also rejects nan
                raise ValueError(f"{where}: negative start {fields[3]}")
            if not dur > 0:
                raise ValueError(f"{where}: duration {fields[4]} is not positive")
            lines[fields[1]].append((Turn(fields[1], start, dur, fields[7]), lineno))
    out = {}
    for reco in c_sorted(lines):
        last: dict[str, tuple[Turn, int]] = {}  # speaker -> (their latest turn, its line)
        entries = sorted(lines[reco], key=lambda x: _sort_key(x[0]))
        for turn, lineno in entries:
            prev, prev_lineno = last.get(turn.speaker, (None, 0))
            if prev is not None and turn.start < prev.end - OVERLAP_TOLERANCE:
                raise ValueError(
                    f"{path}:{lineno}: turn {turn.start:g}-{turn.end:g} s of speaker {turn.speaker} in {reco} "
                    f"overlaps line {prev_lineno} ({prev.start:g}-{prev.end:g} s); a speaker's turns must not "
                    "overlap (merge them)")
            last[turn.speaker] = turn, lineno
        out[reco] = [turn for turn, _ in entries]
    logger.debug("%s: %d recordings, %d turns", path, len(out), sum(map(len, out.values())))
    return out


def write_rttm(path: str | os.PathLike, turns: Iterable[Turn]) -> None:
    """Write turns as a 10-field RTTM (channel 1), sorted by recording (C order), start and speaker, atomically.

    Times are written in whole milliseconds (3 decimals, as dscore writes): 1 ms is far below any frame shift
    (10-20 ms), so nothing a frame-level system decides is lost. Start and end are rounded and the duration is
    their difference, so turns that touch still touch and never overlap after rounding."""
    lines = []
    for turn in sorted(turns, key=lambda t: (t.reco.encode(), *_sort_key(t))):
        for name in (turn.reco, turn.speaker):
            if not name or any(c.isspace() for c in name):
                raise ValueError(f"{path}: recording/speaker name {name!r} is empty or holds whitespace")
        start_ms, end_ms = round(turn.start * 1000), round(turn.end * 1000)
        if start_ms < 0 or end_ms <= start_ms:
            raise ValueError(f"{path}: turn {turn} starts before 0 or is shorter than 1 ms after rounding")
        lines.append(f"SPEAKER {turn.reco} 1 {start_ms / 1000:.3f} {(end_ms - start_ms) / 1000:.3f} "
                     f"<NA> <NA> {turn.speaker} <NA> <NA>\n")
    atomic_write_text(path, "".join(lines))


def merge_turns(turns: Iterable[Turn], max_gap: float = 0.0) -> list[Turn]:
    """Merge turns of one speaker in one recording that overlap, touch or are at most `max_gap` seconds apart.

    Returns the merged turns sorted by recording (C order), start and speaker."""
    by_key: dict[tuple[str, str], list[Turn]] = defaultdict(list)
    for turn in turns:
        by_key[turn.reco, turn.speaker].append(turn)
    merged = []
    for (reco, speaker), group in by_key.items():
        group.sort(key=_sort_key)
        start, end = group[0].start, group[0].end
        for turn in group[1:]:
            if turn.start <= end + max_gap + OVERLAP_TOLERANCE:
                end = max(end, turn.end)
            else:
                merged.append(Turn(reco, start, end - start, speaker))
                start, end = turn.start, turn.end
        merged.append(Turn(reco, start, end - start, speaker))
    return sorted(merged, key=lambda t: (t.reco.encode(), *_sort_key(t)))
