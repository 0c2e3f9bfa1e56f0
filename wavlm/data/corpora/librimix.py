"""Libri2Mix (Cosentino et al. 2020, github.com/JorisCos/LibriMix) as Kaldi data dirs with reference RTTMs, for
speaker diarization (SUPERB SD).

Layout, as LibriMix's scripts/create_librimix_from_metadata.py writes it (16 kHz, "max" mode):
    <root>/Libri2Mix/wav16k/max/{train-100,train-360,dev,test}/{mix_both,mix_clean,mix_single,s1,s2,noise}/<ID>.wav
    <root>/Libri2Mix/wav16k/max/metadata/mixture_<split>_<mix>.csv
<root> may also be the Libri2Mix directory or its wav16k/max directory. The csv of mix_both has the header
    mixture_ID,original_mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length   (current LibriMix)
    mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length                       (before it added
                                                                                                  original_mixture_ID)
(mix_clean: the same without noise_path); columns are read by name. `length` is in samples. The ID is
`<utt1>_<utt2>` of the two LibriSpeech utterances (`<spk>-<chapter>-<nnnn>`); a speaker is named by its LibriSpeech
speaker id. Paths in the csv are absolute paths of the machine that made the corpus: one that is not there is looked
up under this root (the part after `Libri2Mix/`, else the file name in its expected directory).

Data dir per split, `<data>/<split with - -> _>` (`<data>/<split>_<mix>` for a mix other than mix_both):
    wav.scp    ID -> the mixture wav (absolute path)
    utt2spk    ID ID, and spk2utt: each recording is one utterance and its own speaker group (the speakers of a
               diarization recording are in its rttm, not in utt2spk)
    reco2dur   ID -> seconds (`length` / 16000), utt2dur the same from the file header
    rttm       `SPEAKER <ID> 1 <start> <dur> <NA> <NA> <spk> <NA> <NA>`: when each source speaks in the mixture
SUPERB's and ESPnet's data dirs (s3prl's LibriMix fork, scripts/prepare_diarization.py; ESPnet
egs2/librimix/diar1/local/prepare_diarization.py) carry the same turns as a `segments` file with one utterance per
turn and utt2spk turn -> speaker, besides the same rttm; here the rttm alone holds them.

Speaker activity. SUPERB takes each source's turns from per-utterance RTTMs of LibriSpeech made from the alignments
of a Kaldi LibriSpeech ASR model (the fork's metadata/LibriSpeech/{train_clean_100,dev_clean,test_clean}.rttm;
`source_rttm` reads such files: `SPEAKER <chapter>-<nnnn> 1 <start> <dur> <NA> <NA> <spk> <NA> <NA>`, the full
utterance id is accepted too; times in the utterance, which starts at 0 in the mixture). Without them the turns are
found from the energy of each clean source (s1/, s2/) in 20 ms frames (`speech_activity`): frames within
ENERGY_THRESHOLD_DB of the source's loudest frame are speech, pauses shorter than MIN_SILENCE inside speech are
bridged (a sentence's pauses and stop closures do not split a turn), bursts shorter than MIN_SPEECH (clicks,
breaths) are dropped.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from wavlm.data.corpora.common import CorpusError, sources_stamp, up_to_date, write_prepared
from wavlm.data.rttm import Turn, read_rttm, write_rttm

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train-100", "train-360", "dev", "test")  # LibriMix's directory names
MIXES = ("mix_both", "mix_clean")  # the two-speaker mixtures (mix_single holds one speaker)
WHERE = ("generate Libri2Mix with github.com/JorisCos/LibriMix (generate_librimix.sh), or simulate it with "
         "`python -m wavlm.bin.simulate_librimix`")
# the csv columns of each mix, in LibriMix's order; original_mixture_ID (after mixture_ID) is optional
COLUMNS = {
    "mix_both": ("mixture_ID", "mixture_path", "source_1_path", "source_2_path", "noise_path", "length"),
    "mix_clean": ("mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"),
}
ORIGINAL_ID = "original_mixture_ID"
GAINS = "gains"  # metadata/mixture_<split>_gains.csv of wavlm.data.librimix_sim (delays of the second source)
UTT_ID = re.compile(r"\d+-\d+-\d+")  # a LibriSpeech utterance id

FRAME = 320  # 20 ms at 16 kHz: the resolution of the energy-based turns
ENERGY_THRESHOLD_DB = 35.0  # speech: frame energy within this of the source's loudest frame (LibriSpeech's noise
# floor is mostly 35-50 dB below its vowels; weak consonants inside words fall below it and are bridged)
MIN_SILENCE = 0.3  # seconds; shorter pauses between speech frames are part of the turn
MIN_SPEECH = 0.1  # seconds; shorter speech runs (after bridging) are dropped


def column_header(mix: str, original_id: bool) -> list[str]:
    """The csv header LibriMix writes for `mix`: with original_mixture_ID (7 columns for mix_both, current LibriMix)
    or without it (6, older LibriMix)."""
    cols = list(COLUMNS[mix])
    return cols[:1] + [ORIGINAL_ID] + cols[1:] if original_id else cols


def split_dir_name(split: str, mix: str = "mix_both") -> str:
    name = split.replace("-", "_")
    return name if mix == "mix_both" else f"{name}_{mix}"


def speech_activity(x: np.ndarray) -> np.ndarray:
    """[floor(S / FRAME)] bool: the 20 ms frames of 16 kHz signal `x` in which it speaks (see the module doc)."""
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = np.asarray(x[: n * FRAME], dtype=np.float64).reshape(n, FRAME)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    if energy.max() <= -190:  # digital silence
        return np.zeros(n, dtype=bool)
    active = energy > energy.max() - ENERGY_THRESHOLD_DB
    min_sil = int(round(MIN_SILENCE * SAMPLE_RATE / FRAME))
    for a, b in _runs(~active):
        if a > 0 and b < n and b - a < min_sil:
            active[a:b] = True
    min_speech = int(round(MIN_SPEECH * SAMPLE_RATE / FRAME))
    for a, b in _runs(active):
        if b - a < min_speech:
            active[a:b] = False
    return active


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def turns_from_activity(active: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of the runs of active frames."""
    return [(a * FRAME / SAMPLE_RATE, b * FRAME / SAMPLE_RATE) for a, b in _runs(active)]


def overlap_ratio(activities: list[np.ndarray]) -> float:
    """Frames with two or more active sources over frames with at least one (0 when nobody speaks)."""
    n = max(len(a) for a in activities)
    count = np.zeros(n, dtype=np.int32)
    for a in activities:
        count[: len(a)] += a
    speech = int(np.sum(count >= 1))
    return int(np.sum(count >= 2)) / speech if speech else 0.0


def find_max_dir(root: str | os.PathLike) -> Path:
    """The `wav16k/max` directory of Libri2Mix under `root` (the corpus storage dir, Libri2Mix/ or wav16k/max/)."""
    if root is None or not str(root).strip():
        raise CorpusError(f"no Libri2Mix directory given (the directory holding Libri2Mix/wav16k/max/; {WHERE})")
    root = Path(os.path.abspath(root))
    for cand in (root / "Libri2Mix" / "wav16k" / "max", root / "wav16k" / "max", root):
        if (cand / "metadata").is_dir():
            return cand
    raise CorpusError(f"{root}: no Libri2Mix/wav16k/max/metadata/ (nor wav16k/max/metadata/, metadata/) under it; "
                      f"is this a LibriMix storage dir? Only the 16 kHz 'max' version is read ({WHERE})")


def read_metadata(path: Path, mix: str) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a LibriMix mixture csv, checked against the header variants of `mix`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        known = [column_header(mix, o) for o in (True, False)]
        if header is None or [h.strip() for h in header] not in known:
            raise CorpusError(f"{path}:1: unknown header {header}; a LibriMix {mix} csv has "
                              f"{','.join(known[0])} (or without {ORIGINAL_ID}, older LibriMix)")
        header = [h.strip() for h in header]
        rows = []
        for fields in reader:
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) != len(header):
                raise CorpusError(f"{path}:{reader.line_num}: {len(fields)} fields, the header has {len(header)}")
            rows.append((reader.line_num, dict(zip(header, (x.strip() for x in fields), strict=True))))
    return rows


def resolve(spec: str, max_dir: Path, split: str, subdir: str, where: str) -> Path:
    """The file a csv path names: as written when it is there, else under this corpus' root."""
    p = Path(spec)
    tried = [p if p.is_absolute() else max_dir / p]
    if "Libri2Mix" in p.parts:  # <anything>/Libri2Mix/wav16k/max/<split>/<subdir>/<ID>.wav
        last = len(p.parts) - 1 - p.parts[::-1].index("Libri2Mix")
        tried.append(max_dir.parent.parent.joinpath(*p.parts[last + 1:]))
    tried.append(max_dir / split / subdir / p.name)
    for t in tried:
        if t.is_file():
            return Path(os.path.abspath(t))
    raise CorpusError(f"{where}: {subdir} file {spec} is missing (looked for {', '.join(map(str, tried))}); "
                      f"a partial copy of Libri2Mix? ({WHERE})")


def read_source_rttm(paths: list[Path]) -> dict[str, list[Turn]]:
    """Per-utterance turns of LibriSpeech RTTMs, keyed by their recording field."""
    out: dict[str, list[Turn]] = {}
    for path in paths:
        try:
            turns = read_rttm(path)
        except ValueError as e:
            raise CorpusError(str(e)) from None
        for utt, ts in turns.items():
            if utt in out:
                raise CorpusError(f"{path}: utterance {utt} also has turns in another of {', '.join(map(str, paths))}")
            out[utt] = ts
    return out


def _source_offsets(max_dir: Path, split: str) -> dict[str, float]:
    """Delay (s) of the second source per mixture, from the simulator's gains csv (LibriMix itself has none)."""
    p = max_dir / "metadata" / f"mixture_{split}_{GAINS}.csv"
    if not p.is_file():
        return {}
    with open(p, newline="", encoding="utf-8") as f:
        return {r["mixture_ID"]: float(r.get("source_2_offset") or 0) for r in csv.DictReader(f)}


def _read_source(path: Path, n: int, where: str) -> np.ndarray:
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise CorpusError(f"{where}: cannot read {path}: {e}") from None
    if sr != SAMPLE_RATE or x.shape[1] != 1 or len(x) != n:
        raise CorpusError(f"{where}: {path} has {len(x)} samples, {x.shape[1]} channel(s) at {sr} Hz; the mixture "
                          f"has {n} samples, mono at {SAMPLE_RATE} Hz (a truncated or foreign file?)")
    return x[:, 0]


class _Mixture(NamedTuple):
    where: str  # csv:line
    id: str
    utts: list[str]
    spks: list[str]
    length: int  # samples
    path: Path
    sources: list[Path] | None  # s1, s2 (for the energy-based turns)


def prepare_split(max_dir: Path, split: str, dest: Path, mix: str = "mix_both",
                  source_rttm: list[Path] | None = None) -> Path:
    """One data dir from metadata/mixture_<split>_<mix>.csv (see the module doc)."""
    csv_path = max_dir / "metadata" / f"mixture_{split}_{mix}.csv"
    rows = read_metadata(csv_path, mix)
    turns_by_utt = read_source_rttm(source_rttm) if source_rttm else None
    offsets = _source_offsets(max_dir, split) if source_rttm else {}
    items = []
    seen: dict[str, str] = {}
    for n, row in rows:
        where = f"{csv_path}:{n}"
        mid = row["mixture_ID"]
        if mid in seen:
            raise CorpusError(f"{where}: mixture {mid} is also on {seen[mid]}")
        seen[mid] = where
        utts = (row.get(ORIGINAL_ID) or mid).split("_")
        if len(utts) != 2 or not all(UTT_ID.fullmatch(u) for u in utts):
            raise CorpusError(f"{where}: mixture ID {row.get(ORIGINAL_ID) or mid} is not <utt1>_<utt2> of two "
                              "LibriSpeech utterances (<spk>-<chapter>-<nnnn>); only Libri2Mix is read")
        spks = [u.split("-")[0] for u in utts]
        if spks[0] == spks[1]:
            raise CorpusError(f"{where}: both sources of {mid} are speaker {spks[0]}")
        try:
            length = int(row["length"])
        except ValueError:
            raise CorpusError(f"{where}: length {row['length']!r} is not a number of samples") from None
        if length < FRAME:
            raise CorpusError(f"{where}: mixture {mid} has {length} samples, shorter than one {FRAME} sample "
                              f"({1000 * FRAME // SAMPLE_RATE} ms) frame")
        mixture = resolve(row["mixture_path"], max_dir, split, mix, where)
        srcs = None if turns_by_utt is not None else [
            resolve(row[f"source_{k}_path"], max_dir, split, f"s{k}", where) for k in (1, 2)]
        items.append(_Mixture(where, mid, utts, spks, length, mixture, srcs))
    files = [csv_path] + [p for m in items for p in [m.path, *(m.sources or [])]] + list(source_rttm or [])
    mode = "rttm " + " ".join(map(str, source_rttm)) if source_rttm else \
        f"energy {FRAME} {ENERGY_THRESHOLD_DB} {MIN_SILENCE} {MIN_SPEECH}"
    stamp = f"librimix {mix} {mode} {sources_stamp(files)}"
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return dest
    wav: dict[str, str] = {}
    reco2dur: dict[str, str] = {}
    turns: list[Turn] = []
    for where, mid, utts, spks, length, mixture, srcs in tqdm(items, desc=dest.name, mininterval=10):
        info = sf.info(str(mixture))
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames != length:
            raise CorpusError(f"{where}: {mixture} has {info.frames} samples, {info.channels} channel(s) at "
                              f"{info.samplerate} Hz; the csv says {length} samples, mono at {SAMPLE_RATE} Hz")
        dur = length / SAMPLE_RATE
        wav[mid], reco2dur[mid] = str(mixture), repr(dur)
        if srcs is not None:
            for spk, src in zip(spks, srcs, strict=True):
                found = turns_from_activity(speech_activity(_read_source(src, length, where)))
                if not found:
                    log.warning("%s: source %s of speaker %s is silent; no turn for it", where, src, spk)
                turns += [Turn(mid, s, e - s, spk) for s, e in found]
            continue
        for k, (utt, spk) in enumerate(zip(utts, spks, strict=True)):
            found = turns_by_utt.get(utt) or turns_by_utt.get(utt.split("-", 1)[1])
            if not found:
                raise CorpusError(f"{where}: utterance {utt} (as {utt} or {utt.split('-', 1)[1]}) is in none of the "
                                  f"source RTTMs {', '.join(map(str, source_rttm))}")
            shift = offsets.get(mid, 0.0) if k == 1 else 0.0
            for t in found:
                if t.speaker != spk:
                    raise CorpusError(f"{where}: the source RTTMs give utterance {utt} of speaker {spk} to speaker "
                                      f"{t.speaker}")
                s, e = t.start + shift, min(t.end + shift, dur)
                if e > s:
                    turns.append(Turn(mid, s, e - s, spk))
    files_out = {"wav.scp": wav, "utt2spk": {m: m for m in wav}, "reco2dur": reco2dur}
    write_prepared(dest, files_out, stamp, extra={"rttm": lambda path: write_rttm(path, turns)})
    return dest


def prepare_librimix(root: str | os.PathLike, out_dir: str | os.PathLike, splits: list[str] | None = None,
                     mix: str = "mix_both", source_rttm: list[str | os.PathLike] | str | None = None) -> list[Path]:
    """Data dirs `<out_dir>/<split>` of the Libri2Mix splits (default: those with a metadata csv) for `mix`
    (mix_both or mix_clean); turns from `source_rttm` (LibriSpeech per-utterance RTTM files, SUPERB's annotation)
    when given, else from the energy of the clean sources."""
    if mix not in MIXES:
        raise CorpusError(f"unknown mix {mix!r}; choose from {list(MIXES)} (the two-speaker mixtures)")
    max_dir = find_max_dir(root)
    unknown = [s for s in splits or [] if s not in SPLITS]
    if unknown:
        raise CorpusError(f"unknown Libri2Mix splits {unknown}; choose from {list(SPLITS)}")
    available = [s for s in SPLITS if (max_dir / "metadata" / f"mixture_{s}_{mix}.csv").is_file()]
    wanted = splits or available
    absent = [s for s in wanted if s not in available]
    if absent or not wanted:
        raise CorpusError(f"{max_dir}/metadata: no mixture_<split>_{mix}.csv for {absent or list(SPLITS)}"
                          f"{'; there are ' + ' '.join(available) if available else ''} ({WHERE})")
    rttms = [Path(source_rttm)] if isinstance(source_rttm, (str, os.PathLike)) else \
        [Path(p) for p in source_rttm or []]
    for p in rttms:
        if not p.is_file():
            raise CorpusError(f"source RTTM {p} does not exist (LibriSpeech per-utterance turns, e.g. "
                              "metadata/LibriSpeech/dev_clean.rttm of s3prl's LibriMix fork)")
    return [prepare_split(max_dir, s, Path(out_dir) / split_dir_name(s, mix), mix, rttms or None) for s in wanted]
