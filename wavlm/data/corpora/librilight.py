"""Libri-light unlabelled audio (Kahn et al. 2020) in its released layout:
    <root>/<subset>/<spk>/<book>/<name>.flac and <name>.json,
where the json holds `speaker`, `book_meta`, `snr` and `voice_activity` ([[start, end], ...] seconds).

One data dir per subset (small, medium, large; `duplicate` only when asked for). Recordings are
`<spk>-<book>-<name>` (characters outside [A-Za-z0-9_-] become `_`), speakers the Libri-light speaker
ids, and utterances `<recording>-<start cs>-<end cs>` cut from the voice activity: a run of speech
regions becomes one utterance when it spans at most `max_seconds`, otherwise it is split at its
longest pause, recursively (the idea of wav2vec's / HuBERT's Libri-light segmentation, which stitches
speech regions up to 30 s; here an utterance is one contiguous span so it fits Kaldi `segments`).
A single speech region longer than `max_seconds` is cut into equal parts; pieces shorter than
`min_seconds` are dropped.
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import soundfile as sf

from wavlm.data.corpora.common import (
    CorpusError,
    corpus_root,
    present_subsets,
    sources_stamp,
    up_to_date,
    write_prepared,
)

log = logging.getLogger(__name__)

SUBSETS = ("small", "medium", "large")
KNOWN = (*SUBSETS, "duplicate")
WHERE = ("download small.tar, medium.tar, large.tar from github.com/facebookresearch/libri-light and unpack "
         "them (<root>/<subset>/<spk>/<book>/<name>.flac + .json)")
Interval = tuple[float, float]


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def read_voice_activity(path: Path, duration: float) -> list[Interval]:
    """The sorted, overlap-merged speech regions of one json file, checked against the recording."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorpusError(f"{path}: missing (every Libri-light .flac has a .json with voice_activity)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: not valid json: {e}") from None
    va = meta.get("voice_activity") if isinstance(meta, dict) else None
    if not isinstance(va, list):
        raise CorpusError(f"{path}: no `voice_activity` list ([[start, end], ...] in seconds)")
    regions: list[Interval] = []
    for k, item in enumerate(va):
        ok = (isinstance(item, list | tuple) and len(item) == 2
              and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in item))
        if not ok:
            raise CorpusError(f"{path}: voice_activity[{k}] = {item!r} is not [start, end] in seconds")
        start, end = float(item[0]), float(item[1])
        if not 0 <= start < end:
            raise CorpusError(f"{path}: voice_activity[{k}] = {item!r}: need 0 <= start < end")
        if end > duration + 0.05:
            raise CorpusError(f"{path}: voice_activity[{k}] = {item!r} ends after the recording "
                              f"({duration:.2f} s, {path.with_suffix('.flac').name})")
        regions.append((start, min(end, duration)))
    merged: list[Interval] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def segment(regions: list[Interval], max_seconds: float = 30.0, min_seconds: float = 1.0) -> list[Interval]:
    """Utterances (start, end) from sorted, disjoint speech regions: each spans at most `max_seconds`,
    begins and ends inside speech, and splits a longer span at its longest pause (recursively)."""
    if max_seconds <= 0 or min_seconds > max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    out: list[Interval] = []

    def cut(lo: int, hi: int) -> None:  # regions[lo:hi]
        start, end = regions[lo][0], regions[hi - 1][1]
        if end - start <= max_seconds:
            if end - start >= min_seconds:
                out.append((start, end))
        elif hi - lo == 1:
            n = math.ceil((end - start) / max_seconds)
            step = (end - start) / n
            out.extend((start + i * step, start + (i + 1) * step) for i in range(n)
                       if step >= min_seconds)
        else:
            k = max(range(lo + 1, hi), key=lambda i: (regions[i][0] - regions[i - 1][1], -i))
            cut(lo, k)
            cut(k, hi)

    if regions:
        cut(0, len(regions))
    return out


def prepare_subset(src: Path, dest: Path, max_seconds: float, min_seconds: float) -> None:
    flacs = sorted(src.glob("*/*/*.flac"))
    if not flacs:
        raise CorpusError(f"{src}: no <spk>/<book>/*.flac files; is this a Libri-light subset? ({WHERE})")
    jsons = [f.with_suffix(".json") for f in flacs]
    stamp = f"{src} max_seconds={max_seconds} min_seconds={min_seconds} " + sources_stamp(
        flacs + [j for j in jsons if j.is_file()])
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return
    files: dict[str, dict[str, str]] = {n: {} for n in ("wav.scp", "segments", "utt2spk", "reco2dur")}
    origin: dict[str, Path] = {}
    for flac, js in zip(flacs, jsons, strict=True):
        spk = sanitize(flac.parent.parent.name)
        rec = sanitize(f"{flac.parent.parent.name}-{flac.parent.name}-{flac.stem}")
        if rec in origin:
            raise CorpusError(f"{flac} and {origin[rec]} both map to recording id {rec}")
        origin[rec] = flac
        try:
            duration = sf.info(str(flac)).duration
        except Exception as e:
            raise CorpusError(f"{flac}: cannot read the audio header: {e}") from None
        utts = segment(read_voice_activity(js, duration), max_seconds, min_seconds)
        if not utts:
            log.warning("%s: no speech of at least %.1f s in voice_activity; skipped", js, min_seconds)
            continue
        files["wav.scp"][rec] = str(flac)
        files["reco2dur"][rec] = f"{duration:.3f}"
        for start, end in utts:  # centiseconds, rounded inwards so that a cut stays inside speech
            a, b = math.ceil(round(start * 100, 6)), math.floor(round(end * 100, 6))
            utt = f"{rec}-{a:07d}-{b:07d}"
            files["segments"][utt] = f"{rec} {a / 100:.2f} {b / 100:.2f}"
            files["utt2spk"][utt] = spk
    if not files["utt2spk"]:
        raise CorpusError(f"{src}: no utterance of at least {min_seconds} s in any voice_activity")
    write_prepared(dest, files, stamp)


def prepare(root: str | Path, data: str | Path, subsets: list[str] | None = None,
            max_seconds: float = 30.0, min_seconds: float = 1.0) -> list[Path]:
    root, data = corpus_root(root, "Libri-light", "small/, medium/, large/", WHERE), Path(data)
    unknown = [s for s in subsets or [] if s not in KNOWN]
    if unknown:
        raise CorpusError(f"unknown Libri-light subsets {unknown}; choose from {list(KNOWN)}")
    present = present_subsets(root, subsets, list(SUBSETS), "small/<spk>/<book>/*.flac", WHERE)
    out = []
    for s in present:
        dest = data / s
        prepare_subset(root / s, dest, max_seconds, min_seconds)
        out.append(dest)
    return out
