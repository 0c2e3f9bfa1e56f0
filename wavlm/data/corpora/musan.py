"""Augmentation corpora as Kaldi data dirs (absolute paths in wav.scp):
MUSAN (openslr 17: musan/{noise,music,speech}/<source>/*.wav) -> data/musan_noise, data/musan_music,
data/musan_speech; RIRS_NOISES (openslr 28) -> data/rirs, the room impulse responses its own lists name:
simulated_rirs/{smallroom,mediumroom,largeroom}/rir_list and real_rirs_isotropic_noises/rir_list, lines
`--rir-id ID --room-id ROOM [--rt60 X ...] RIRS_NOISES/<path>.wav` as Kaldi's steps/data/reverberate_data_dir.py
reads them (paths relative to the parent of RIRS_NOISES). The isotropic noises of real_rirs_isotropic_noises/
(its noise_list) and pointsource_noises/ are not responses and are not used.
A multi-channel response (the RVB2014 ones have 8 channels, the AIR ones 2) is used through its first channel, as
Kaldi's wav-reverberate does by default (--rir-channel=0): its wav.scp entry is `sox FILE -t wav - remix 1 |`; a
response at another sample rate is resampled to 16 kHz in the same pipe.
Every recording is its own utterance and speaker (augmentation does not use speakers)."""
from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from wavlm.data.corpora.common import CorpusError, sources_stamp, up_to_date, write_prepared

log = logging.getLogger(__name__)

MUSAN_PARTS = ("noise", "music", "speech")
SAMPLE_RATE = 16000
WHERE_RIRS = "RIRS_NOISES, openslr.org resource 28"
# the lists of room impulse responses in RIRS_NOISES (relative to it), and the name of each in ids and logs
RIR_LISTS = {"smallroom": "simulated_rirs/smallroom/rir_list", "mediumroom": "simulated_rirs/mediumroom/rir_list",
             "largeroom": "simulated_rirs/largeroom/rir_list", "real": "real_rirs_isotropic_noises/rir_list"}
# the options of a rir_list line (Kaldi's reverberate_data_dir.py); --rir-id and --room-id are required
RIR_OPTIONS = ("--rir-id", "--room-id", "--receiver-position-id", "--source-position-id", "--rt60", "--drr", "--cte",
               "--probability")


def _prepare(files: list[Path], dest: Path, prefix: str, where: str) -> Path:
    if not files:
        raise CorpusError(f"no .wav files for {dest.name} ({where})")
    stamp = sources_stamp(files)
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return dest
    ids = {f"{prefix}-{f.stem}": str(f) for f in files}
    if len(ids) != len(files):
        raise CorpusError(f"{dest.name}: two recordings share a file name under {where}")
    write_prepared(dest, {"wav.scp": ids, "utt2spk": {u: u for u in ids}}, stamp)
    return dest


def prepare_musan(root: str | Path, data: str | Path, subsets: list[str] | None = None) -> list[Path]:
    """data/musan_noise, musan_music, musan_speech (or the parts in `subsets`)."""
    root, data = Path(os.path.abspath(root)), Path(data)
    parts = subsets or list(MUSAN_PARTS)
    unknown = [p for p in parts if p not in MUSAN_PARTS]
    if unknown:
        raise CorpusError(f"unknown MUSAN parts {unknown}; choose from {list(MUSAN_PARTS)}")
    missing = [p for p in parts if not (root / p).is_dir()]
    if missing:
        raise CorpusError(f"{root}: no {'/, '.join(missing)}/ (MUSAN, openslr.org resource 17: noise/, music/, "
                          "speech/)")
    return [_prepare(sorted((root / p).rglob("*.wav")), data / f"musan_{p}", p, str(root / p)) for p in parts]


@dataclass
class ListedRir:
    rir_id: str
    path: Path  # absolute
    where: str  # `<rir_list>:<line>`


def read_rir_list(path: Path, root: Path) -> list[ListedRir]:
    """The responses a RIRS_NOISES rir_list names. A path in it is relative to the parent of RIRS_NOISES: its first
    component is the corpus directory (`root`, whatever it is called here)."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            f = shlex.split(line)
        except ValueError as e:
            raise CorpusError(f"{where}: cannot split {line!r}: {e}") from None
        opts: dict[str, str] = {}
        i = 0
        while i + 1 < len(f) and f[i].startswith("--"):
            if f[i] not in RIR_OPTIONS:
                raise CorpusError(f"{where}: unknown option {f[i]} (a rir_list line takes {' '.join(RIR_OPTIONS)})")
            opts[f[i]] = f[i + 1]
            i += 2
        rest = f[i:]
        if len(rest) != 1 or "--rir-id" not in opts or "--room-id" not in opts:
            raise CorpusError(f"{where}: expected `--rir-id ID --room-id ROOM [options] RIRS_NOISES/<path>.wav`, "
                              f"got {line!r}")
        spec, rir_id = rest[0], opts["--rir-id"]
        if spec.endswith("|") or len(spec.split()) != 1:
            raise CorpusError(f"{where}: {spec!r} is not a file name (pipes are not supported here; list the file)")
        if len(rir_id.split()) != 1:
            raise CorpusError(f"{where}: --rir-id {rir_id!r} has white space (it becomes a Kaldi id)")
        rel = Path(spec)
        if not rel.is_absolute() and len(rel.parts) < 2:
            raise CorpusError(f"{where}: {spec} is not under RIRS_NOISES/ (paths are relative to its parent)")
        file = rel if rel.is_absolute() else root.joinpath(*rel.parts[1:])
        if not file.is_file():
            raise CorpusError(f"{where}: {file} is missing (listed as {spec}); a partial download? Unpack "
                              f"rirs_noises.zip again ({WHERE_RIRS})")
        out.append(ListedRir(rir_id, file, where))
    return out


def rir_entry(rir: ListedRir) -> str:
    """The wav.scp entry of a response: the file itself when it is mono at 16 kHz, else a sox pipe that takes its
    first channel (and resamples it)."""
    try:
        info = sf.info(str(rir.path))
    except Exception as e:
        raise CorpusError(f"{rir.where}: cannot read the audio header of {rir.path}: {e}") from None
    if info.channels == 1 and info.samplerate == SAMPLE_RATE:
        return str(rir.path)
    effects = (["remix", "1"] if info.channels > 1 else []) + (
        ["rate", str(SAMPLE_RATE)] if info.samplerate != SAMPLE_RATE else [])
    return " ".join(["sox", shlex.quote(str(rir.path)), "-t", "wav", "-", *effects, "|"])


def prepare_rirs(root: str | Path, data: str | Path, subsets: list[str] | None = None) -> list[Path]:
    """data/rirs: every response of the simulated and real rir_lists of RIRS_NOISES (subsets are not supported)."""
    if subsets:
        raise CorpusError("rirs has no subsets")
    root, data = Path(os.path.abspath(root)), Path(data)
    lists: dict[str, Path] = {}
    for name, rel in RIR_LISTS.items():
        lst = root / rel
        if lst.is_file():
            lists[name] = lst
        elif lst.parent.is_dir():
            raise CorpusError(f"{lst.parent}: no rir_list; RIRS_NOISES names its responses there, and without it "
                              f"which files are responses is unknown (unpack rirs_noises.zip again; {WHERE_RIRS})")
        else:
            log.info("%s: not there; its responses are not used", lst)
    if not lists:
        raise CorpusError(f"{root}: none of {', '.join(RIR_LISTS.values())} is there; is this RIRS_NOISES? "
                          f"({WHERE_RIRS})")
    rirs = {name: read_rir_list(lst, root) for name, lst in lists.items()}
    dest = data / "rirs"
    stamp = sources_stamp([*lists.values(), *(r.path for rs in rirs.values() for r in rs)])
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return [dest]
    entries: dict[str, str] = {}
    first: dict[str, str] = {}
    for rs in rirs.values():
        for r in rs:
            utt = f"rir-{r.rir_id}"
            if utt in first:
                raise CorpusError(f"{r.where}: --rir-id {r.rir_id} also on {first[utt]}")
            first[utt] = r.where
            entries[utt] = rir_entry(r)
    write_prepared(dest, {"wav.scp": entries, "utt2spk": {u: u for u in entries}}, stamp)
    piped = sum(e.endswith("|") for e in entries.values())
    log.info("%s: %s; %d of them multi-channel or not at 16 kHz (first channel, 16 kHz, through sox)", dest,
             ", ".join(f"{len(rs)} {name}" for name, rs in rirs.items()), piped)
    return [dest]
