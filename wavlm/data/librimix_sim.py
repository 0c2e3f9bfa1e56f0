"""Libri2Mix-style mixtures (16 kHz, "max" mode) simulated from LibriSpeech and MUSAN noise, written in LibriMix's
layout, for when the real corpus is not there (and for the synthetic corpora).

LibriMix's rules (github.com/JorisCos/LibriMix, scripts/create_librimix_metadata.py and
scripts/create_librimix_from_metadata.py):
* two utterances of different speakers; within a round of pairing each utterance is used once (its train sets), more
  mixtures come from further rounds over a reshuffled list, skipping pairs already made (its dev/test sets);
* every source, the noise included, is scaled to a loudness drawn uniformly, speech in [MIN_LOUDNESS, MAX_LOUDNESS] =
  [-33, -25] LUFS and noise 5 LU lower, [-38, -30] LUFS, measured with pyloudnorm's ITU-R BS.1770 meter on the
  signals already padded to the mixture length; a source whose scaled peak reaches 1 is scaled to a peak of
  MAX_AMP = 0.9 instead (its loudness is then what that gives);
* "max" mode: both sources start at 0 and the shorter is padded with zeros at the end to the longer;
* the noise is cut to the mixture length from its start, and a shorter one is looped, each copy cross-faded into the
  previous over half a second with Hann halves (its extend_noise);
* when the peak of mix_both exceeds MAX_AMP, every source and the noise are scaled by MAX_AMP / peak
  (its check_for_cliping), so that the written sources still add up to the mixtures;
* written as 16-bit PCM: wav16k/max/<split>/{mix_both,mix_clean,s1,s2,noise}/<ID>.wav, ID = <utt1>_<utt2>, and
  metadata/mixture_<split>_{mix_both,mix_clean}.csv with LibriMix's columns (`csv_columns` 7: with
  original_mixture_ID as current LibriMix writes; 6: without, as older LibriMix did).
Different from LibriMix: noise from MUSAN's noise part (WHAM! is not free), drawn with replacement (LibriMix uses
each WHAM! noise once); the second source may be delayed by up to `max_offset` seconds (default 0, LibriMix's
layout: no control of the overlap).

What was drawn is kept in metadata/mixture_<split>_gains.csv, one row per mixture: LibriMix's generation metadata
columns (mixture_ID, source_1_path, source_1_gain, source_2_path, source_2_gain, noise_path, noise_gain; a gain is the
factor from the input file to the written source, the paths are the inputs), then source_1_LUFS, source_2_LUFS,
noise_LUFS (the loudness each was scaled to before the clipping rule's `scale`), scale, source_2_offset (seconds)
and overlap_ratio (overlapped over active 20 ms frames of the two written sources, wavlm.data.corpora.librimix's
energy activity). The loudness differences are the SNRs as drawn: source_1_LUFS - noise_LUFS for speech over noise,
source_1_LUFS - source_2_LUFS between the speakers (in LU, the same in every written file since `scale` is common).

Mixture k of a split is a pure function of (seed, its ID, the inputs): the pairs are planned once from the seed,
then every mixture draws from a generator seeded by (seed, ID), so any number of processes gives the same files.
A rerun skips the mixtures already written (files are renamed into place; a mixture's row is logged after its
files), and a complete split with the same parameters is left as it is.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from wavlm.data.audio import read_audio
from wavlm.data.corpora.librimix import (
    GAINS,
    SAMPLE_RATE,
    SPLITS,
    UTT_ID,
    column_header,
    overlap_ratio,
    speech_activity,
)
from wavlm.data.datadir import DataDir, atomic_write_text, split_ids

logger = logging.getLogger(__name__)

MIN_LOUDNESS, MAX_LOUDNESS = -33.0, -25.0  # LUFS, speech (create_librimix_metadata.py)
NOISE_LOUDNESS_SHIFT = -5.0  # the noise is drawn in [MIN_LOUDNESS - 5, MAX_LOUDNESS - 5]
MAX_AMP = 0.9  # peak of a clipping source or mixture after rescaling
CROSSFADE = SAMPLE_RATE // 2  # samples over which a looped noise copy fades in (extend_noise: Hann of 1 s, halved)
OUTPUTS = ("mix_both", "mix_clean", "s1", "s2", "noise")
# the input LibriSpeech subset of each LibriMix split (when --librispeech is the LibriSpeech root)
LIBRISPEECH_SUBSET = {"train-100": "train-clean-100", "train-360": "train-clean-360", "dev": "dev-clean",
                      "test": "test-clean"}
GAIN_COLUMNS = ("mixture_ID", "source_1_path", "source_1_gain", "source_2_path", "source_2_gain", "noise_path",
                "noise_gain", "source_1_LUFS", "source_2_LUFS", "noise_LUFS", "scale", "source_2_offset",
                "overlap_ratio")


class LibriMixSimError(ValueError):
    """Unusable input for the LibriMix simulation; the message names the file or utterance."""


@dataclass(frozen=True)
class SimParams:
    split: str
    num_mixtures: int
    seed: int
    max_offset: float = 0.0
    csv_columns: int = 7


# ---- inputs ------------------------------------------------------------------------------------------------------


def load_speech(path: str | os.PathLike, split: str) -> dict[str, str]:
    """LibriSpeech utterance id -> audio (file or wav.scp entry) from a Kaldi data dir (wav.scp), a LibriSpeech
    subset directory (<spk>/<chapter>/*.flac) or the LibriSpeech root (its subset for `split`)."""
    p = Path(os.path.abspath(path))
    if (p / "wav.scp").is_file():
        d = DataDir(p)
        if d.has("segments"):
            raise LibriMixSimError(f"{p}/segments: utterances cut from recordings are not supported; give a data dir "
                                   "of whole LibriSpeech utterances")
        table = d.wav_scp
        out = {}
        for utt in table.keys():
            if not UTT_ID.fullmatch(utt):
                raise LibriMixSimError(f"{table.where(utt)}: {utt} is not a LibriSpeech utterance id "
                                       "(<spk>-<chapter>-<nnnn>), which LibriMix's IDs and speakers are made of")
            out[utt] = table[utt]
        return out
    sub = p / LIBRISPEECH_SUBSET.get(split, "")
    top = sub if split in LIBRISPEECH_SUBSET and sub.is_dir() else p
    files = sorted(top.glob("*/*/*.flac"))
    if not files:
        raise LibriMixSimError(f"{p}: neither a data dir (wav.scp) nor LibriSpeech (<spk>/<chapter>/*.flac, or "
                               f"{LIBRISPEECH_SUBSET.get(split, '<subset>')}/ of the LibriSpeech root)")
    return {f.stem: str(f) for f in files if UTT_ID.fullmatch(f.stem)}


def load_noises(path: str | os.PathLike) -> list[str]:
    """Noise recordings (files or wav.scp entries) from a data dir (e.g. data/musan_noise), MUSAN's root (its noise/
    part) or any directory of wavs."""
    p = Path(os.path.abspath(path))
    if (p / "wav.scp").is_file():
        table = DataDir(p).wav_scp
        return [table[k] for k in table.keys()]
    top = p / "noise" if (p / "noise").is_dir() else p
    files = sorted(str(f) for f in top.rglob("*.wav"))
    if not files:
        raise LibriMixSimError(f"{p}: no noise recordings (a data dir with wav.scp, MUSAN's root with noise/, or a "
                               "directory of .wav files)")
    return files


def _read(spec: str, what: str, first_channel: bool = False) -> np.ndarray:
    x, sr = read_audio(spec, what=what)
    if sr != SAMPLE_RATE:
        raise LibriMixSimError(f"{what}: {sr} Hz; LibriMix is made at {SAMPLE_RATE} Hz (resample the input)")
    if x.ndim == 2:
        if not first_channel and x.shape[1] != 1:
            raise LibriMixSimError(f"{what}: {x.shape[1]} channels; LibriSpeech utterances are mono")
        x = x[:, 0]
    if len(x) == 0:
        raise LibriMixSimError(f"{what}: empty audio")
    return x.astype(np.float64)


# ---- planning and drawing ------------------------------------------------------------------------------------------


def _rng(seed: int, *keys: str) -> np.random.Generator:
    digest = hashlib.sha256("\0".join(keys).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF,
                                                         *np.frombuffer(digest[:16], dtype=np.uint32).tolist()]))


def plan_pairs(utts: list[str], num_mixtures: int, seed: int, split: str) -> list[tuple[str, str]]:
    """`num_mixtures` distinct pairs (as LibriMix: in a round of a reshuffled list each utterance is used once, paired
    with the next one of another speaker; pairs already made are skipped)."""
    spk = {u: u.split("-")[0] for u in utts}
    if len(set(spk.values())) < 2:
        raise LibriMixSimError(f"{split}: {len(utts)} utterances of {len(set(spk.values()))} speaker(s); a mixture "
                               "needs two speakers")
    rng = _rng(seed, "pairs", split)
    order = sorted(utts)
    pairs: list[tuple[str, str]] = []
    made: set[frozenset[str]] = set()
    while len(pairs) < num_mixtures:
        before = len(pairs)
        waiting: list[str] = []  # utterances not yet paired in this round, oldest first
        for u in (order[i] for i in rng.permutation(len(order))):
            mate = next((w for w in waiting if spk[w] != spk[u] and frozenset((w, u)) not in made), None)
            if mate is None:
                waiting.append(u)
                continue
            waiting.remove(mate)
            pairs.append((mate, u))
            made.add(frozenset((mate, u)))
            if len(pairs) == num_mixtures:
                break
        if len(pairs) == before:
            raise LibriMixSimError(f"{split}: only {len(pairs)} distinct pairs of utterances of different speakers "
                                   f"can be made from {len(utts)} utterances, {num_mixtures} asked for")
    return pairs


def loop_noise(x: np.ndarray, n: int) -> np.ndarray:
    """`x` cut to `n` samples from its start, looped with Hann cross-fades when shorter."""
    out = x
    c = min(CROSSFADE, len(x) // 2)
    fade_in = np.hanning(2 * c + 1)[:c] if c else np.zeros(0)
    while len(out) < n:
        if c == 0:
            out = np.concatenate([out, x])
            continue
        out = np.concatenate([out[:-c], out[-c:] * fade_in[::-1] + x[:c] * fade_in, x[c:]])
    return out[:n]


def normalise_and_mix(signals: list[np.ndarray], targets: list[float], names: list[str]
                      ) -> tuple[list[np.ndarray], list[float], float]:
    """LibriMix's levels: each signal scaled to its target loudness (LUFS), or to a peak of MAX_AMP when that would
    reach 1 (its target is then the loudness it gets); then all scaled by `scale` = MAX_AMP / peak when their sum
    peaks above MAX_AMP. Returns (scaled signals, targets as applied before `scale`, scale)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(SAMPLE_RATE)
    out, applied = [], []
    for x, target, name in zip(signals, targets, names, strict=True):
        try:
            loud = meter.integrated_loudness(x)
        except ValueError as e:  # shorter than one 0.4 s block
            raise LibriMixSimError(f"{name}: {len(x)} samples; cannot measure its loudness: {e}") from None
        if not np.isfinite(loud):
            raise LibriMixSimError(f"{name}: silent (loudness {loud} LUFS); it cannot be brought to a loudness")
        y = x * 10 ** ((target - loud) / 20)
        if np.max(np.abs(y)) >= 1:
            y = x * (MAX_AMP / np.max(np.abs(x)))
            target = float(meter.integrated_loudness(y))
        out.append(y)
        applied.append(float(target))
    peak = float(np.max(np.abs(np.sum(out, axis=0))))
    scale = MAX_AMP / peak if peak > MAX_AMP else 1.0
    return [y * scale for y in out], applied, scale


def _pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


@dataclass
class Mixture:
    id: str
    audio: dict[str, np.ndarray]  # OUTPUTS -> int16 [S]
    row: dict[str, str]  # GAIN_COLUMNS -> value


def simulate_mixture(utt1: str, utt2: str, speech: dict[str, str], noises: list[str], seed: int,
                     max_offset: float = 0.0) -> Mixture:
    """The mixture of `utt1` and `utt2` (a pure function of them, the seed and the inputs)."""
    mid = f"{utt1}_{utt2}"
    rng = _rng(seed, "mixture", mid)
    s1 = _read(speech[utt1], f"{speech[utt1]} (utterance {utt1})")
    s2 = _read(speech[utt2], f"{speech[utt2]} (utterance {utt2})")
    offset = int(round(rng.uniform() * max_offset * SAMPLE_RATE))
    n = max(len(s1), offset + len(s2))
    src = np.zeros((2, n))
    src[0, : len(s1)] = s1
    src[1, offset : offset + len(s2)] = s2
    noise_spec = noises[int(rng.integers(len(noises)))]
    noise = loop_noise(_read(noise_spec, f"{noise_spec} (noise)", first_channel=True), n)
    targets = [float(rng.uniform(MIN_LOUDNESS, MAX_LOUDNESS)) for _ in range(2)]
    targets.append(float(rng.uniform(MIN_LOUDNESS + NOISE_LOUDNESS_SHIFT, MAX_LOUDNESS + NOISE_LOUDNESS_SHIFT)))
    (y1, y2, yn), applied, scale = normalise_and_mix(
        [src[0], src[1], noise], targets, [f"utterance {utt1}", f"utterance {utt2}", f"noise {noise_spec}"])
    audio = {"s1": _pcm16(y1), "s2": _pcm16(y2), "noise": _pcm16(yn), "mix_clean": _pcm16(y1 + y2),
             "mix_both": _pcm16(y1 + y2 + yn)}
    gains = [float(np.dot(y, x) / np.dot(x, x)) for y, x in ((y1, src[0]), (y2, src[1]), (yn, noise))]
    ratio = overlap_ratio([speech_activity(audio[s] / 32768.0) for s in ("s1", "s2")])
    values = [mid, speech[utt1], gains[0], speech[utt2], gains[1], noise_spec, gains[2], *applied, scale,
              offset / SAMPLE_RATE, ratio]
    return Mixture(mid, audio, {k: v if isinstance(v, str) else repr(v) for k, v in
                                zip(GAIN_COLUMNS, values, strict=True)})


# ---- writing ---------------------------------------------------------------------------------------------------------


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    sf.write(str(tmp), pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    os.replace(tmp, path)


def _paths(split_dir: Path, mid: str) -> dict[str, Path]:
    return {o: split_dir / o / f"{mid}.wav" for o in OUTPUTS}


def _run_job(pairs: list[tuple[str, str]], speech: dict[str, str], noises: list[str], p: SimParams,
             split_dir: Path, log_path: Path, job: int) -> int:
    """Simulate and write `pairs`, logging each mixture's row (after its files) to `log_path`."""
    with open(log_path, "a", encoding="utf-8") as log:
        for u1, u2 in tqdm(pairs, desc=f"{p.split} job {job}", mininterval=10, disable=len(pairs) < 50):
            m = simulate_mixture(u1, u2, speech, noises, p.seed, p.max_offset)
            for o, path in _paths(split_dir, m.id).items():
                _write_wav(path, m.audio[o])
            log.write(json.dumps(m.row, sort_keys=True) + "\n")
            log.flush()
    return len(pairs)


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _logged_rows(logs: list[Path], split_dir: Path) -> dict[str, dict[str, str]]:
    """The rows of the mixtures whose files are all written, from the jobs' logs."""
    rows = {}
    for log_file in logs:
        for line in log_file.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the last line of a killed job
                continue
            if all(p.is_file() for p in _paths(split_dir, row["mixture_ID"]).values()):
                rows[row["mixture_ID"]] = row
    return rows


def _write_metadata(meta: Path, split: str, split_dir: Path, ids: list[str], rows: dict[str, dict[str, str]],
                    csv_columns: int) -> None:
    """LibriMix's mixture csvs (the header variant of `csv_columns`) and the gains csv, in the order of `ids`."""
    for mix in ("mix_both", "mix_clean"):
        header = column_header(mix, csv_columns == 7)
        lines = []
        for mid in ids:
            paths = _paths(split_dir, mid)
            values = {"mixture_ID": mid, "original_mixture_ID": mid, "mixture_path": str(paths[mix]),
                      "source_1_path": str(paths["s1"]), "source_2_path": str(paths["s2"]),
                      "noise_path": str(paths["noise"]), "length": str(sf.info(str(paths[mix])).frames)}
            lines.append([values[c] for c in header])
        atomic_write_text(meta / f"mixture_{split}_{mix}.csv", _csv_text(header, lines))
    atomic_write_text(meta / f"mixture_{split}_{GAINS}.csv",
                      _csv_text(list(GAIN_COLUMNS), [[rows[m][c] for c in GAIN_COLUMNS] for m in ids]))


def simulate_librimix(librispeech: str | os.PathLike, musan: str | os.PathLike, out: str | os.PathLike, split: str,
                      num_mixtures: int, seed: int = 0, nj: int = 1, max_offset: float = 0.0, csv_columns: int = 7,
                      overwrite: bool = False) -> Path:
    """Write split `split` of Libri2Mix (wav16k/max) under `out`/Libri2Mix; returns its wav16k/max directory."""
    if split not in SPLITS:
        raise LibriMixSimError(f"unknown split {split!r}; LibriMix's are {list(SPLITS)}")
    if num_mixtures < 1 or nj < 1 or max_offset < 0 or csv_columns not in (6, 7):
        raise LibriMixSimError(f"need num_mixtures >= 1, nj >= 1, max_offset >= 0, csv_columns 6 or 7; got "
                               f"{num_mixtures}, {nj}, {max_offset}, {csv_columns}")
    params = SimParams(split, num_mixtures, seed, float(max_offset), csv_columns)
    stamp = {**asdict(params), "librispeech": os.path.abspath(librispeech), "musan": os.path.abspath(musan)}
    max_dir = Path(os.path.abspath(out)) / "Libri2Mix" / "wav16k" / "max"
    meta, split_dir = max_dir / "metadata", max_dir / split
    marker = meta / f".mixture_{split}.done"
    if marker.is_file() and not overwrite:
        if json.loads(marker.read_text()) == stamp:
            logger.info("%s: complete with the same parameters; skipping", split_dir)
            return max_dir
        raise LibriMixSimError(f"{marker}: {split} was simulated with other parameters "
                               f"{marker.read_text().strip()}; use --overwrite or another --out")
    key = hashlib.sha1(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:10]
    logs = sorted(meta.glob(f".mixture_{split}_*.jsonl")) if meta.is_dir() else []
    if split_dir.exists() and not overwrite and not logs:
        raise LibriMixSimError(f"{split_dir} exists but holds no simulation of this tool (no {meta}/.mixture_{split}"
                               "_*.jsonl); use --overwrite to replace it, or another --out")
    if overwrite or any(key not in f.name for f in logs):
        logger.info("%s: removing %s (%s)", split, split_dir, "overwrite" if overwrite else
                    "an unfinished simulation with other parameters")
        shutil.rmtree(split_dir, ignore_errors=True)
        for f in meta.glob(f"*mixture_{split}_*") if meta.is_dir() else []:
            f.unlink()
        marker.unlink(missing_ok=True)
    speech, noises = load_speech(librispeech, split), load_noises(musan)
    pairs = plan_pairs(sorted(speech), num_mixtures, seed, split)
    ids = [f"{a}_{b}" for a, b in pairs]
    rows = _logged_rows(sorted(meta.glob(f".mixture_{split}_{key}.*.jsonl")), split_dir)
    todo = [pair for pair, mid in zip(pairs, ids, strict=True) if mid not in rows]
    logger.info("%s: %d mixtures, %d already written", split_dir, len(ids), len(ids) - len(todo))
    meta.mkdir(parents=True, exist_ok=True)
    jobs = [(split_ids(todo, nj, j), j) for j in range(1, nj + 1) if split_ids(todo, nj, j)]
    args = [(part, speech, noises, params, split_dir, meta / f".mixture_{split}_{key}.{j}.jsonl", j)
            for part, j in jobs]
    if len(args) <= 1:
        for a in args:
            _run_job(*a)
    else:
        with ProcessPoolExecutor(max_workers=len(args)) as pool:
            for f in [pool.submit(_run_job, *a) for a in args]:
                f.result()
    rows = _logged_rows(sorted(meta.glob(f".mixture_{split}_{key}.*.jsonl")), split_dir)
    missing = [m for m in ids if m not in rows]
    if missing:
        raise LibriMixSimError(f"{split_dir}: {len(missing)} mixtures were not written, e.g. {missing[0]}")
    _write_metadata(meta, split, split_dir, ids, rows, csv_columns)
    atomic_write_text(marker, json.dumps(stamp, sort_keys=True) + "\n")
    for log_file in meta.glob(f".mixture_{split}_*.jsonl"):
        log_file.unlink()
    clipped = sum(float(rows[m]["scale"]) < 1 for m in ids)
    logger.info("%s: %d mixtures written (%d rescaled against clipping)", split_dir, len(ids), clipped)
    return max_dir
