"""Kaldi data directories: reading, validation and the usual manipulations.

Implemented once here; `utils/*.sh` are thin wrappers around `python -m wavlm.bin.datadir`.
Files follow Kaldi: `wav.scp` (rec -> path or pipe), optional `segments` (utt rec start end),
`utt2spk`, `spk2utt`, `text`, `utt2dur`, `reco2dur`, `spk2gender`. All sorted in C locale.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wavlm.data.audio import AudioError, read_audio

# Per-utterance files (keyed by utterance id) that are filtered/split with the utterance list.
UTT_FILES = ("utt2spk", "text", "utt2dur", "utt2num_frames", "feats.scp", "utt2lang")
# Per-recording files (keyed by recording id).
REC_FILES = ("wav.scp", "reco2dur", "reco2file_and_channel")
SPK_FILES = ("spk2utt", "spk2gender")


class DataDirError(ValueError):
    """A data directory that is malformed; the message names the file and line."""


@dataclass
class Table:
    """An ordered `key rest-of-line` file with line numbers kept for error messages."""

    path: Path
    rows: dict[str, str] = field(default_factory=dict)
    lineno: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.path}:{self.lineno.get(key, '?')}"

    def keys(self) -> list[str]:
        return list(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __getitem__(self, key: str) -> str:
        return self.rows[key]

    def __len__(self) -> int:
        return len(self.rows)


def read_table(path: str | os.PathLike, *, allow_empty_value: bool = False) -> Table:
    """Read a Kaldi `key value...` file. Duplicate keys and malformed lines are errors."""
    path = Path(path)
    table = Table(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                raise DataDirError(f"{path}:{n}: empty line")
            key, _, value = line.partition(" ")
            if not key or key != key.strip() or line != line.strip():
                raise DataDirError(f"{path}:{n}: leading/trailing whitespace or bad key in {line!r}")
            value = value.strip()
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{n}: key {key!r} has no value")
            if key in table.rows:
                raise DataDirError(
                    f"{path}:{n}: duplicate id {key!r} (first seen on line {table.lineno[key]})"
                )
            table.rows[key] = value
            table.lineno[key] = n
    return table


def write_table(path: str | os.PathLike, rows: Iterable[tuple[str, str]]) -> None:
    """Write `key value` lines sorted in C locale (byte order), atomically."""
    lines = sorted((f"{k} {v}".rstrip() + "\n" for k, v in rows), key=lambda s: s.split(" ", 1)[0].encode())
    atomic_write_text(path, "".join(lines))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary name in the same directory and rename it.

    A file that already holds exactly `text` is left alone (so reruns keep its modification time)."""
    path = Path(path)
    try:
        if path.stat().st_size == len(text.encode()) and path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644 & ~_umask())  # mkstemp makes 0600; outputs are shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def c_sorted(keys: Iterable[str]) -> list[str]:
    """Sort as `LC_ALL=C sort` does (byte order)."""
    return sorted(keys, key=lambda s: s.encode())


@dataclass
class Segment:
    rec: str
    start: float
    end: float


class DataDir:
    """A Kaldi data directory, read lazily file by file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataDirError(f"{self.path}: not a directory (expected a Kaldi data dir)")
        if not (self.path / "wav.scp").is_file() and not (self.path / "feats.scp").is_file():
            raise DataDirError(f"{self.path}: has neither wav.scp nor feats.scp")
        self._cache: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        if name not in self._cache:
            p = self.path / name
            self._cache[name] = read_table(p, allow_empty_value=name == "text") if p.is_file() else None
        return self._cache[name]

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    @property
    def wav_scp(self) -> Table:
        t = self.table("wav.scp")
        if t is None:
            raise DataDirError(f"{self.path}: missing wav.scp")
        return t

    @property
    def segments(self) -> dict[str, Segment] | None:
        t = self.table("segments")
        if t is None:
            return None
        out = {}
        for utt, value in t.rows.items():
            parts = value.split()
            if len(parts) != 3:
                raise DataDirError(f"{t.where(utt)}: expected `utt rec start end`, got {utt} {value!r}")
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                raise DataDirError(f"{t.where(utt)}: start/end are not numbers: {value!r}") from None
            out[utt] = Segment(parts[0], start, end)
        return out

    def utt_ids(self) -> list[str]:
        """Utterance ids, from segments if present, else wav.scp (or feats.scp)."""
        for name in ("segments", "wav.scp", "feats.scp"):
            t = self.table(name)
            if t is not None:
                return t.keys()
        return []

    def utt2spk(self) -> dict[str, str]:
        t = self.table("utt2spk")
        return dict(t.rows) if t is not None else {u: u for u in self.utt_ids()}

    def text(self) -> dict[str, str]:
        t = self.table("text")
        if t is None:
            raise DataDirError(f"{self.path}: missing text")
        return dict(t.rows)

    def utt2dur(self) -> dict[str, float]:
        t = self.table("utt2dur")
        if t is None:
            raise DataDirError(f"{self.path}: missing utt2dur (run utils/data/get_utt2dur.sh {self.path})")
        return {k: float(v) for k, v in t.rows.items()}

    def describe(self, utt: str) -> str:
        """`file:line (utt X)` for error messages about an utterance's audio."""
        segs = self.table("segments")
        if segs is not None and utt in segs:
            rec = segs[utt].split()[0]
            return f"{self.wav_scp.where(rec)} (utterance {utt}, recording {rec})"
        return f"{self.wav_scp.where(utt)} (utterance {utt})"

    def load_audio(self, utt: str) -> tuple[np.ndarray, int]:
        """Audio of one utterance (cut from its recording when there are segments)."""
        segs = self.segments
        what = self.describe(utt)
        if segs is None:
            if utt not in self.wav_scp:
                raise DataDirError(f"{self.path}/wav.scp: no entry for utterance {utt}")
            return read_audio(self.wav_scp[utt], what=what)
        seg = segs.get(utt)
        if seg is None:
            raise DataDirError(f"{self.path}/segments: no entry for utterance {utt}")
        if seg.rec not in self.wav_scp:
            raise DataDirError(f"{self.path}/segments: recording {seg.rec} of {utt} is not in wav.scp")
        wav, sr = read_audio(self.wav_scp[seg.rec], what=what)
        a, b = int(round(seg.start * sr)), int(round(seg.end * sr))
        if b > wav.shape[0] + sr // 100:  # Kaldi tolerates rounding; we allow 10 ms
            raise AudioError(f"{what}: segment ends at {seg.end:.2f}s, recording is {wav.shape[0] / sr:.2f}s")
        return wav[a:b], sr

    def iter_audio(self, utts: Iterable[str] | None = None) -> Iterator[tuple[str, np.ndarray, int]]:
        """Yield (utt, audio, sample_rate), reading each recording once when segments share it."""
        utts = self.utt_ids() if utts is None else list(utts)
        segs = self.segments
        if segs is None:
            for u in utts:
                wav, sr = self.load_audio(u)
                yield u, wav, sr
            return
        cur_rec, cur = None, None
        for u in utts:
            seg = segs[u]
            if seg.rec != cur_rec:
                cur_rec = seg.rec
                cur = read_audio(self.wav_scp[seg.rec], what=self.describe(u))
            wav, sr = cur
            yield u, wav[int(round(seg.start * sr)) : int(round(seg.end * sr))], sr


def split_ids(ids: list[str], nj: int, job: int) -> list[str]:
    """The `job`-th (1-based) of `nj` contiguous, near-equal parts of `ids` (as Kaldi's split_scp.pl)."""
    if not 1 <= job <= nj:
        raise ValueError(f"job {job} is outside 1..{nj}")
    n = len(ids)
    start = (job - 1) * n // nj
    end = job * n // nj
    return ids[start:end]


# ---- validation ----------------------------------------------------------------------------------


def spk2utt_from_utt2spk(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for utt in c_sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return {s: out[s] for s in c_sorted(out)}


def audio_info(spec: str, *, what: str) -> tuple[int, int, int]:
    """(num_samples, sample_rate, num_channels) of a wav.scp entry; reads headers only for plain files."""
    if not spec.endswith("|") and ":" not in Path(spec).name:
        import soundfile as sf

        try:
            info = sf.info(spec)
        except Exception as e:
            raise AudioError(f"{what}: cannot read audio header of {spec}: {e}") from e
        return int(info.frames), int(info.samplerate), int(info.channels)
    wav, sr = read_audio(spec, what=what)
    return int(wav.shape[0]), sr, 1 if wav.ndim == 1 else int(wav.shape[1])


def validate(
    path: str | os.PathLike,
    *,
    check_audio: bool = False,
    sample_rate: int = 16000,
    channels: int | None = None,
    need_text: bool = False,
    max_errors: int = 20,
) -> list[str]:
    """Check a data dir; returns the problems found, each naming the file and line (empty = valid).

    `check_audio` reads every recording's header (pipes are run): readable, `sample_rate`, not empty;
    `channels` (implies `check_audio`) also requires that many channels."""
    errors: list[str] = []

    def err(msg: str) -> None:
        if len(errors) < max_errors:
            errors.append(msg)

    try:
        d = DataDir(path)
        tables = {n: d.table(n) for n in (*UTT_FILES, *REC_FILES, *SPK_FILES, "segments")}
    except DataDirError as e:
        return [str(e)]
    p = d.path
    for t in tables.values():
        if t is None:
            continue
        prev = None
        for key in t.keys():
            if prev is not None and key.encode() < prev.encode():
                err(
                    f"{t.where(key)}: not sorted in C locale ({key!r} after {prev!r}); "
                    f"run utils/fix_data_dir.sh {p}"
                )
                break
            prev = key
    if tables["utt2spk"] is None:
        err(f"{p}/utt2spk: missing (every data dir needs utt2spk; use utt as its own speaker if unknown)")
        return errors
    if tables["spk2utt"] is None:
        err(f"{p}/spk2utt: missing; run utils/fix_data_dir.sh {p} to create it from utt2spk")
        return errors
    utt2spk_t, spk2utt_t = tables["utt2spk"], tables["spk2utt"]
    utts = utt2spk_t.keys()
    uttset = set(utts)

    for utt in utts:
        if len(utt2spk_t[utt].split()) != 1:
            err(f"{utt2spk_t.where(utt)}: expected `utt spk`, got {utt} {utt2spk_t[utt]!r}")
    want = spk2utt_from_utt2spk(utt2spk_t.rows)
    for spk in spk2utt_t.keys():
        got = spk2utt_t[spk].split()
        if spk not in want:
            err(f"{spk2utt_t.where(spk)}: speaker {spk} has no utterance in utt2spk")
        elif sorted(got) != sorted(want[spk]):
            extra = c_sorted(set(got) - set(want[spk]))[:3]
            lack = c_sorted(set(want[spk]) - set(got))[:3]
            err(
                f"{spk2utt_t.where(spk)}: speaker {spk} disagrees with utt2spk "
                f"(extra {extra}, missing {lack})"
            )
    for spk in c_sorted(set(want) - set(spk2utt_t.keys())):
        err(f"{p}/spk2utt: speaker {spk} of utt2spk:{utt2spk_t.lineno[want[spk][0]]} is missing")
    by_spk = [u for spk in c_sorted(want) for u in want[spk]]
    if by_spk != c_sorted(utts):
        err(
            f"{p}/utt2spk: utterances sorted by speaker differ from sorted by id; make each speaker id "
            "a prefix of its utterance ids (needed to split by speaker)"
        )

    # the utterance list is defined by segments if present, else wav.scp
    segs_t = tables["segments"]
    wav_t = tables["wav.scp"]
    source = segs_t if segs_t is not None else (wav_t if wav_t is not None else tables["feats.scp"])
    if source is not None:
        for utt in source.keys():
            if utt not in uttset:
                err(f"{source.where(utt)}: utterance {utt} has no speaker in utt2spk")
        for utt in utts:
            if utt not in source:
                err(f"{utt2spk_t.where(utt)}: utterance {utt} is not in {source.path.name}")
    for name in ("text", "utt2dur", "utt2num_frames", "feats.scp", "utt2lang"):
        t = tables[name]
        if t is None or t is source:
            continue
        for utt in t.keys():
            if utt not in uttset:
                err(f"{t.where(utt)}: utterance {utt} is not in utt2spk")
        missing = [u for u in utts if u not in t]
        if missing:
            err(f"{t.path}: {len(missing)} utterances of utt2spk missing, e.g. {missing[0]}")
    if need_text and tables["text"] is None:
        err(f"{p}/text: missing (this step needs transcripts)")

    rec_dur: dict[str, float] = {}
    if tables["reco2dur"] is not None:
        rec_dur = {k: float(v) for k, v in tables["reco2dur"].rows.items()}
    if segs_t is not None and wav_t is not None:
        used = set()
        for utt, value in segs_t.rows.items():
            parts = value.split()
            if len(parts) != 3:
                err(f"{segs_t.where(utt)}: expected `utt rec start end`, got {utt} {value}")
                continue
            rec = parts[0]
            used.add(rec)
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                err(f"{segs_t.where(utt)}: start/end are not numbers: {value}")
                continue
            if rec not in wav_t:
                err(f"{segs_t.where(utt)}: recording {rec} is not in wav.scp")
            if not 0 <= start < end:
                err(f"{segs_t.where(utt)}: bad segment times {start} {end} (need 0 <= start < end)")
        for rec in wav_t.keys():
            if rec not in used:
                err(f"{wav_t.where(rec)}: recording {rec} is used by no segment")

    if (check_audio or channels is not None) and wav_t is not None:
        for rec in wav_t.keys():
            where = wav_t.where(rec)
            try:
                n, sr, nch = audio_info(wav_t[rec], what=f"{where} (recording {rec})")
            except AudioError as e:
                err(str(e))
                continue
            if sr != sample_rate:
                err(f"{where}: recording {rec} has sample rate {sr} Hz, expected {sample_rate} Hz")
            if channels is not None and nch != channels:
                hint = " (pick one in wav.scp, e.g. `sox FILE -t wav - remix 1 |`)" if channels == 1 else ""
                err(f"{where}: recording {rec} has {nch} channels, expected {channels}{hint}")
            if n == 0:
                err(f"{where}: recording {rec} is empty")
            rec_dur[rec] = n / sr
    if segs_t is not None and rec_dur:
        for utt, value in segs_t.rows.items():
            parts = value.split()
            if len(parts) == 3 and parts[0] in rec_dur:
                try:
                    end = float(parts[2])
                except ValueError:
                    continue
                if end > rec_dur[parts[0]] + 0.01:
                    err(
                        f"{segs_t.where(utt)}: segment {utt} ends at {end:.2f}s, after the end of "
                        f"recording {parts[0]} ({rec_dur[parts[0]]:.2f}s)"
                    )
    return errors


# ---- manipulations (each writes a complete, sorted, consistent data dir) --------------------------


def _rows(d: DataDir, name: str) -> dict[str, str]:
    t = d.table(name)
    return dict(t.rows) if t is not None else {}


def write_data_dir(
    dest: str | os.PathLike,
    files: dict[str, dict[str, str]],
) -> None:
    """Write a data dir from per-file `{key: value}` maps, regenerating spk2utt from utt2spk.

    Written into a temporary sibling directory and renamed, so `dest` is either the old or the new
    complete data dir, never a mix.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        for name, rows in files.items():
            if rows:
                write_table(tmp / name, rows.items())
        if "utt2spk" in files:
            spk2utt = spk2utt_from_utt2spk(files["utt2spk"])
            write_table(tmp / "spk2utt", ((s, " ".join(u)) for s, u in spk2utt.items()))
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old.{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            _rmtree(old)
        else:
            os.replace(tmp, dest)
    except BaseException:
        _rmtree(tmp)
        raise


def _rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def select(d: DataDir, utts: Iterable[str]) -> dict[str, dict[str, str]]:
    """The files of `d` restricted to `utts` (and the recordings and speakers they use)."""
    keep = set(utts)
    files: dict[str, dict[str, str]] = {}
    for name in UTT_FILES:
        rows = _rows(d, name)
        if rows:
            files[name] = {u: v for u, v in rows.items() if u in keep}
    segs = _rows(d, "segments")
    if segs:
        files["segments"] = {u: v for u, v in segs.items() if u in keep}
        recs = {v.split()[0] for v in files["segments"].values()}
    else:
        recs = keep
    for name in REC_FILES:
        rows = _rows(d, name)
        if rows:
            files[name] = {r: v for r, v in rows.items() if r in recs}
    spks = set(files.get("utt2spk", {}).values())
    rows = _rows(d, "spk2gender")
    if rows:
        files["spk2gender"] = {s: v for s, v in rows.items() if s in spks}
    return files


def fix(path: str | os.PathLike) -> tuple[int, int]:
    """Keep the utterances present in every per-utterance file (Kaldi's fix_data_dir.sh).

    Returns (kept, before). The old files are kept in `<dir>/.backup/`.
    """
    d = DataDir(path)
    candidates = set(d.utt_ids())
    before = len(candidates)
    for name in UTT_FILES:
        rows = _rows(d, name)
        if rows:
            candidates &= set(rows)
    segs = _rows(d, "segments")
    if segs:
        wav = _rows(d, "wav.scp")
        candidates = {u for u in candidates if segs[u].split()[0] in wav}
    if not (d.path / "utt2spk").is_file():
        raise DataDirError(f"{d.path}/utt2spk: missing; cannot fix a data dir without speakers")
    backup = d.path / ".backup"
    backup.mkdir(exist_ok=True)
    for f in d.path.iterdir():
        if f.is_file():
            shutil.copy2(f, backup / f.name)
    # in place, file by file (each atomic): other files and sub-directories of the dir stay
    files = select(d, candidates)
    for name, rows in files.items():
        write_table(d.path / name, rows.items())
    spk2utt = spk2utt_from_utt2spk(files["utt2spk"])
    write_table(d.path / "spk2utt", ((s, " ".join(u)) for s, u in spk2utt.items()))
    return len(candidates), before


def split(path: str | os.PathLike, nj: int, *, per_utt: bool = False) -> Path:
    """Split into `nj` parts under `<dir>/split<nj>[utt]/<1..nj>` (by speaker unless per_utt).

    Up to date splits (newer than every file of the data dir) are left as they are.
    """
    d = DataDir(path)
    out = d.path / f"split{nj}{'utt' if per_utt else ''}"
    newest = max(f.stat().st_mtime for f in d.path.iterdir() if f.is_file())
    done = [out / str(j) / "utt2spk" for j in range(1, nj + 1)]
    if all(f.is_file() for f in done) and min(f.stat().st_mtime for f in done) >= newest:
        return out
    utt2spk = d.utt2spk()
    if per_utt:
        units = [[u] for u in c_sorted(utt2spk)]
    else:
        units = list(spk2utt_from_utt2spk(utt2spk).values())
    if nj > len(units):
        raise DataDirError(
            f"{d.path}: cannot split {len(units)} {'utterances' if per_utt else 'speakers'} into {nj} parts"
        )
    # contiguous parts balanced by utterance count, none empty
    total = sum(len(x) for x in units)
    parts: list[list[str]] = [[] for _ in range(nj)]
    j = acc = 0
    for i, unit in enumerate(units):
        if parts[j] and (acc >= (j + 1) * total / nj or len(units) - i <= nj - 1 - j):
            j += 1
        parts[j].extend(unit)
        acc += len(unit)
    for j in range(nj):
        write_data_dir(out / str(j + 1), select(d, parts[j]))
    return out


def subset(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    num: int | None = None,
    first: int | None = None,
    last: int | None = None,
    shortest: int | None = None,
    utt_list: str | os.PathLike | None = None,
    spk_list: str | os.PathLike | None = None,
    per_spk: int | None = None,
    speakers: int | None = None,
) -> int:
    """Kaldi's subset_data_dir.sh: by count (evenly spaced), first/last N, shortest N, or a list; or by speaker:
    `speakers` M speakers (evenly spaced in C order) with all their utterances, or `per_spk` N utterances of
    each speaker (evenly spaced among its own; all of them when it has fewer), or both."""
    d = DataDir(src)
    utts = c_sorted(d.utt2spk())
    if per_spk is not None or speakers is not None:
        for name, v in (("per_spk", per_spk), ("speakers", speakers)):
            if v is not None and v < 1:
                raise ValueError(f"subset: {name} must be at least 1, got {v}")
        spk2utt = spk2utt_from_utt2spk(d.utt2spk())
        spks = evenly_spaced(list(spk2utt), speakers) if speakers is not None else list(spk2utt)
        chosen = c_sorted(u for s in spks for u in (evenly_spaced(spk2utt[s], per_spk) if per_spk else spk2utt[s]))
    elif utt_list is not None:
        wanted = {line.split()[0] for line in Path(utt_list).read_text().splitlines() if line.strip()}
        chosen = [u for u in utts if u in wanted]
    elif spk_list is not None:
        wanted = {line.split()[0] for line in Path(spk_list).read_text().splitlines() if line.strip()}
        u2s = d.utt2spk()
        chosen = [u for u in utts if u2s[u] in wanted]
    elif first is not None:
        chosen = utts[:first]
    elif last is not None:
        chosen = utts[-last:] if last else []
    elif shortest is not None:
        dur = d.utt2dur()
        chosen = sorted(utts, key=lambda u: (dur[u], u.encode()))[:shortest]
    elif num is not None:
        chosen = evenly_spaced(utts, num)
    else:
        raise ValueError("subset: give a count, --first, --last, --shortest, --utt-list, --spk-list, --per-spk "
                         "or --speakers")
    if not chosen:
        raise DataDirError(f"{d.path}: the subset is empty")
    write_data_dir(dest, select(d, chosen))
    return len(chosen)


def evenly_spaced(items: list[str], k: int) -> list[str]:
    """k of `items` spread evenly over the list, deterministic (as utils/subset_scp.pl); all when k >= len."""
    if k >= len(items):
        return list(items)
    return [items[(2 * i + 1) * len(items) // (2 * k)] for i in range(k)]


def combine(dest: str | os.PathLike, srcs: list[str | os.PathLike]) -> int:
    """Kaldi's combine_data.sh: the union of data dirs with disjoint utterance ids."""
    merged: dict[str, dict[str, str]] = {}
    owners: dict[tuple[str, str], Path] = {}
    present: dict[str, set[Path]] = {}
    dirs = [DataDir(s) for s in srcs]
    for d in dirs:
        for name, rows in select(d, d.utt_ids()).items():
            present.setdefault(name, set()).add(d.path)
            target = merged.setdefault(name, {})
            for k, v in rows.items():
                if k in target and target[k] != v:
                    raise DataDirError(
                        f"{d.path}/{name}: id {k} also in {owners[(name, k)]}/{name} with another value"
                    )
                target[k] = v
                owners[(name, k)] = d.path
    for name, have in present.items():
        if name in UTT_FILES and len(have) != len(dirs):
            lack = [str(d.path) for d in dirs if d.path not in have]
            logging.getLogger(__name__).warning("combine: %s missing in %s; not combined", name, lack)
            del merged[name]
    write_data_dir(dest, merged)
    return len(merged.get("utt2spk", {}))


def copy(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    utt_prefix: str = "",
    utt_suffix: str = "",
    spk_prefix: str = "",
    spk_suffix: str = "",
) -> int:
    """Kaldi's copy_data_dir.sh with id prefixes/suffixes (recording ids follow utterance ids
    when there are no segments)."""
    d = DataDir(src)
    files = select(d, d.utt_ids())

    def u(x: str) -> str:
        return f"{utt_prefix}{x}{utt_suffix}"

    def s(x: str) -> str:
        return f"{spk_prefix}{x}{spk_suffix}"

    has_segments = "segments" in files
    out: dict[str, dict[str, str]] = {}
    for name, rows in files.items():
        if name == "utt2spk":
            out[name] = {u(k): s(v) for k, v in rows.items()}
        elif name in UTT_FILES or name == "segments":
            out[name] = {u(k): v for k, v in rows.items()}
        elif name in REC_FILES:
            out[name] = rows if has_segments else {u(k): v for k, v in rows.items()}
        elif name == "spk2gender":
            out[name] = {s(k): v for k, v in rows.items()}
    write_data_dir(dest, out)
    return len(out.get("utt2spk", {}))


def compute_utt2dur(path: str | os.PathLike) -> int:
    """Write `utt2dur` (seconds): from segments, else from audio headers (pipes are decoded)."""
    d = DataDir(path)
    segs = d.segments
    if segs is not None:
        durs = {u: s.end - s.start for u, s in segs.items()}
    else:
        durs = {}
        for rec in d.wav_scp.keys():
            n, sr, _ = audio_info(d.wav_scp[rec], what=f"{d.wav_scp.where(rec)} (recording {rec})")
            durs[rec] = n / sr
    write_table(d.path / "utt2dur", ((u, f"{v:.3f}") for u, v in durs.items()))
    return len(durs)
