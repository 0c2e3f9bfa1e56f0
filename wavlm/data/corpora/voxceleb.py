"""VoxCeleb1 and VoxCeleb2 (Nagrani et al. 2017, Chung et al. 2018) for speaker verification:
    <vox1_root>/wav/<id1xxxx>/<video>/<nnnnn>.wav   (vox1_dev_wav.zip + vox1_test_wav.zip unpacked together;
                                                     <vox1_root>/*/wav/... e.g. vox1_dev_wav/wav, vox1_test_wav/wav
                                                     is read too), optional <vox1_root>/vox1_meta.csv (tab separated,
                                                     `VoxCeleb1 ID  VGGFace1 ID  Gender  Nationality  Set`),
    <vox1_root>/{veri_test2.txt,list_test_all2.txt,list_test_hard2.txt}  the O, E and H trial lists,
    <vox1_root>/iden_split.txt                      the identification split (`<set> <spk>/<video>/<nnnnn>.wav`,
                                                     set 1 train, 2 dev, 3 test; all 1251 speakers in each),
    <vox2_root>/dev/aac/<id0xxxx>/<video>/<nnnnn>.m4a  (the released VoxCeleb2 dev set), or the same tree as
                                                     .wav under dev/wav/ or wav/ (converted; the synthetic corpus),
                                                     optional <vox2_root>/vox2_meta.csv.

Data dirs (utterances `<spk>-<video>-<nnnnn>`, speakers the VoxCeleb ids, spk2gender from the meta files):
    vox1_dev   VoxCeleb1 speakers outside the test set: the meta file's Set column when there, else
               every id but id10270..id10309 (the 40 test speakers of the real corpus);
    vox1_test  the VoxCeleb1 test speakers (the O list);
    vox1_all   all of VoxCeleb1 (the E and H lists);
    vox2_dev   the VoxCeleb2 dev set;
    train      the union of `train_sets` (default vox2_dev, as the paper; add vox1_dev to train on both);
    sid_train, sid_dev, sid_test   the sets 1, 2, 3 of iden_split.txt (speaker identification, SUPERB SID), made
               when asked for (`sid_sets`, or an `iden_split` file given: all three); every file it lists must be
               on disk (a partial download is an error naming the first missing file and the count).
Trial lists (`1|0 <spk>/<video>/<nnnnn>.wav <spk>/<video>/<nnnnn>.wav`) become Kaldi trials
`<enroll-utt> <test-utt> target|nontarget`: trials/vox1_O (against vox1_test), trials/vox1_E and
trials/vox1_H (against vox1_all), in the order of the list. Trial lists asked for by name must be made (their
source there, their data dir prepared); without names, those that can be made are.
wav.scp holds absolute paths (a relative root is made absolute).

m4a files are read through wav.scp pipes `ffmpeg -nostdin -loglevel error -i <file> -f wav -ac 1 -ar 16000 - |`;
their utt2dur comes from the MP4 header (decoding a million files once to measure them would take hours).
A wav file is preferred over an m4a file of the same utterance.
"""
from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from wavlm.data import datadir
from wavlm.data.corpora.common import CorpusError, combine_prepared, sources_stamp, up_to_date

log = logging.getLogger(__name__)

SITE = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/"
WHERE1 = (f"download VoxCeleb1 (vox1_dev_wav.zip, vox1_test_wav.zip) and vox1_meta.csv from {SITE} and unpack "
          "both zips into one directory (<vox1_root>/wav/id10001/<video>/00001.wav ...)")
WHERE2 = (f"download the VoxCeleb2 dev set (vox2_dev_aac_parta*, concatenated, unzipped) from {SITE} "
          "(<vox2_root>/dev/aac/id00012/<video>/00001.m4a ...)")
WHERE_TRIALS = f"the cleaned trial lists veri_test2.txt, list_test_all2.txt, list_test_hard2.txt from {SITE}meta/"
TEST_IDS = range(10270, 10310)  # id10270..id10309: the VoxCeleb1 test speakers of the real corpus
TRIAL_LISTS = {"vox1_O": ("veri_test2.txt", "vox1_test"), "vox1_E": ("list_test_all2.txt", "vox1_all"),
               "vox1_H": ("list_test_hard2.txt", "vox1_all")}
TRAIN_PARTS = ("vox2_dev", "vox1_dev")
IDEN_SPLIT = "iden_split.txt"
SID_SETS = {"sid_train": "1", "sid_dev": "2", "sid_test": "3"}  # data dir -> set number in iden_split.txt
WHERE_IDEN = f"the identification split {IDEN_SPLIT} from {SITE}meta/"
SAMPLE_RATE = 16000
# VoxCeleb2 as released is AAC in MP4 (.m4a); the pipe decodes it to 16 kHz mono wav on every read.
FFMPEG = "ffmpeg -nostdin -loglevel error -i {} -f wav -ac 1 -ar 16000 - |"
CONVERT = ("cd <vox2_root> && find dev/aac -name '*.m4a' | xargs -P 8 -n 1 bash -c "
           "'o=dev/wav/${1#dev/aac/}; mkdir -p \"${o%/*}\" && "
           "ffmpeg -nostdin -loglevel error -i \"$1\" -ac 1 -ar 16000 \"${o%.m4a}.wav\"' _")
SPK1 = re.compile(r"id1\d{4}")
SPK2 = re.compile(r"id0\d{4}")


@dataclass
class Utterance:
    spk: str
    path: Path

    @property
    def utt(self) -> str:
        return utt_id(self.spk, self.path.parent.name, self.path.stem)


def utt_id(spk: str, video: str, name: str) -> str:
    """`<spk>-<video>-<nnnnn>`: the speaker id is a prefix (Kaldi's rule for splitting by speaker)."""
    return f"{spk}-{video}-{name}"


def scan(root: Path, layouts: Iterable[tuple[str, str]], spk_re: re.Pattern[str], corpus: str,
         where: str) -> dict[str, Utterance]:
    """Utterance id -> file for every `<dir>/<spk>/<video>/<nnnnn>.<ext>` of the (dir glob, ext) layouts.
    A wav file wins over an m4a file of the same utterance (converted copies)."""
    found: dict[str, Utterance] = {}
    for pattern, ext in layouts:
        for top in sorted(p for p in root.glob(pattern) if p.is_dir()):
            for f in sorted(top.glob(f"*/*/*.{ext}")):
                spk = f.parent.parent.name
                if not spk_re.fullmatch(spk):
                    raise CorpusError(f"{f}: speaker directory {spk} is not a {corpus} id "
                                      f"({spk_re.pattern}); is {root} {corpus}? ({where})")
                u = Utterance(spk, f)
                old = found.get(u.utt)
                if old is not None and old.path.suffix == f.suffix:
                    raise CorpusError(f"{f} and {old.path} are both utterance {u.utt}")
                if old is None or f.suffix == ".wav":
                    found[u.utt] = u
    return found


def read_meta(path: Path) -> dict[str, dict[str, str]]:
    """Speaker id -> {'set': 'dev'|'test', 'gender': 'm'|'f'} from vox1_meta.csv (tab separated) or
    vox2_meta.csv (`,` separated, padded with spaces); empty when the file does not exist."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines:
        raise CorpusError(f"{path}: empty (expected a header line `VoxCeleb1 ID<TAB>...<TAB>Set`)")
    sep = "\t" if "\t" in lines[0] else ","
    header = [c.strip().lower() for c in lines[0].split(sep)]
    if "set" not in header:
        raise CorpusError(f"{path}:1: no `Set` column in the header {lines[0]!r}")
    col_set, col_gender = header.index("set"), header.index("gender") if "gender" in header else None
    meta: dict[str, dict[str, str]] = {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(sep)]
        if len(cols) <= col_set or cols[col_set] not in ("dev", "test"):
            raise CorpusError(f"{path}:{n}: expected the columns of the header, Set `dev` or `test`; got {line!r}")
        entry = {"set": cols[col_set]}
        if col_gender is not None and col_gender < len(cols) and cols[col_gender].lower() in ("m", "f"):
            entry["gender"] = cols[col_gender].lower()
        meta[cols[0]] = entry
    return meta


def check_ffmpeg(utts: Iterable[Utterance], root: Path) -> None:
    """m4a files need ffmpeg at every read (wav.scp pipes): stop now, with what to do, rather than
    write a data dir that cannot be read later."""
    m4a = [u.path for u in utts if u.path.suffix == ".m4a"]
    if m4a and shutil.which("ffmpeg") is None:
        raise CorpusError(
            f"{root}: {len(m4a)} .m4a files (e.g. {m4a[0]}) are read through `ffmpeg ... |` pipes in wav.scp, "
            "but ffmpeg is not on PATH. Install ffmpeg (apt-get install ffmpeg, or conda install ffmpeg), "
            f"or convert VoxCeleb2 to 16 kHz wav once, where ffmpeg is available: {CONVERT}  "
            "(dev/wav/ is then used instead of dev/aac/)")


def m4a_duration(path: Path) -> float:
    """Duration in seconds from the `moov/mvhd` box of an MP4/M4A file (no decoding)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size

        def find(start: int, end: int, kind: bytes) -> tuple[int, int] | None:
            pos = start
            while pos + 8 <= end:
                f.seek(pos)
                n, typ = struct.unpack(">I4s", f.read(8))
                head = 8
                if n == 1:
                    (n,) = struct.unpack(">Q", f.read(8))
                    head = 16
                elif n == 0:
                    n = end - pos
                if n < head or pos + n > end:
                    break
                if typ == kind:
                    return pos + head, pos + n
                pos += n
            return None

        moov = find(0, size, b"moov")
        mvhd = find(*moov, b"mvhd") if moov else None
        if mvhd is None or mvhd[1] - mvhd[0] < 20:
            raise CorpusError(f"{path}: no moov/mvhd box; not an MP4/M4A file, or truncated")
        f.seek(mvhd[0])
        version = f.read(4)[0]
        if version == 1:
            f.seek(16, os.SEEK_CUR)
            timescale, duration = struct.unpack(">IQ", f.read(12))
        else:
            f.seek(8, os.SEEK_CUR)
            timescale, duration = struct.unpack(">II", f.read(8))
    if timescale == 0 or duration == 0:
        raise CorpusError(f"{path}: the mvhd box gives no duration (timescale {timescale}, duration {duration})")
    return duration / timescale


def duration(path: Path) -> float:
    if path.suffix == ".m4a":
        return m4a_duration(path)
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise CorpusError(f"{path}: cannot read the audio header: {e}") from None
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise CorpusError(f"{path}: {info.samplerate} Hz, {info.channels} channels; VoxCeleb is {SAMPLE_RATE} Hz mono")
    if info.frames == 0:
        raise CorpusError(f"{path}: no audio samples")
    return info.frames / info.samplerate


def durations(utts: list[Utterance], what: str, nj: int = 8) -> dict[str, float]:
    """Utterance id -> seconds, from the file headers (read in `nj` threads: I/O bound)."""
    with ThreadPoolExecutor(nj) as pool:
        secs = list(tqdm(pool.map(lambda u: duration(u.path), utts), total=len(utts),
                         desc=f"durations {what}", unit="utt", disable=len(utts) < 10000))
    return {u.utt: s for u, s in zip(utts, secs, strict=True)}


def write_dir(dest: Path, utts: list[Utterance], durs: dict[str, float], stamp: str,
              genders: dict[str, str]) -> None:
    """One data dir through `<dest>.tmp`: validated, renamed, stamped (as common.write_prepared, with
    utt2dur from the headers read once instead of decoding every m4a)."""
    files: dict[str, dict[str, str]] = {
        "wav.scp": {u.utt: FFMPEG.format(shlex.quote(str(u.path))) if u.path.suffix == ".m4a" else str(u.path)
                    for u in utts},
        "utt2spk": {u.utt: u.spk for u in utts},
        "utt2dur": {u.utt: f"{durs[u.utt]:.3f}" for u in utts},
    }
    spk2gender = {u.spk: genders[u.spk] for u in utts if u.spk in genders}
    if spk2gender:
        files["spk2gender"] = spk2gender
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    datadir.write_data_dir(tmp, files)
    errors = datadir.validate(tmp)
    if errors:
        raise CorpusError("prepared data dir is invalid:\n  " + "\n  ".join(errors))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    (dest / ".done").write_text(stamp + "\n")
    log.info("%s: %d utterances, %d speakers", dest, len(utts), len({u.spk for u in utts}))


def write_dirs(parts: dict[Path, list[Utterance]], stamp: Callable[[Path], str], genders: dict[str, str],
               what: str) -> None:
    """Write the data dirs that are not up to date, reading the durations once for all of them."""
    todo = {d: us for d, us in parts.items() if not up_to_date(d, stamp(d))}
    for d in parts:
        if d not in todo:
            log.info("%s is up to date", d)
    if not todo:
        return
    need = {u.utt: u for us in todo.values() for u in us}
    durs = durations(list(need.values()), what)
    for d, us in todo.items():
        write_dir(d, us, durs, stamp(d), genders)


def read_iden_split(src: Path, utts: dict[str, Utterance], root: Path) -> dict[str, list[Utterance]]:
    """SID data dir name (SID_SETS) -> its utterances in id order, from iden_split.txt lines
    `1|2|3 <spk>/<video>/<nnnnn>.wav`; every file listed must be among `utts` (those under `root`)."""
    name_of = {num: name for name, num in SID_SETS.items()}
    sets: dict[str, list[Utterance]] = {name: [] for name in SID_SETS}
    first: dict[str, int] = {}
    missing: list[tuple[int, str, str]] = []
    for n, line in enumerate(src.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        u = trial_utt(f[1]) if len(f) == 2 else None
        if u is None:
            raise CorpusError(f"{src}:{n}: expected `1|2|3 <spk>/<video>/<nnnnn>.wav` (set 1 train, 2 dev, 3 test), "
                              f"got {line!r}")
        if f[0] not in name_of:
            raise CorpusError(f"{src}:{n}: set {f[0]!r} is not 1 (train), 2 (dev) or 3 (test) in {line!r}")
        if u in first:
            raise CorpusError(f"{src}:{n}: {f[1]} (utterance {u}) is listed again; first at line {first[u]}")
        first[u] = n
        if u in utts:
            sets[name_of[f[0]]].append(utts[u])
        else:
            missing.append((n, f[1], u))
    if not first:
        raise CorpusError(f"{src}: no utterances (expected lines `1|2|3 <spk>/<video>/<nnnnn>.wav`)")
    if missing:
        n, x, u = missing[0]
        raise CorpusError(f"{src}:{n}: {x} (utterance {u}) is not under {root}; {len(missing)} of the {len(first)} "
                          f"files {src.name} lists are missing, this one first: is VoxCeleb1 only partly downloaded "
                          f"or unpacked? ({WHERE1})")
    unlisted = sorted(set(utts) - set(first))
    if unlisted:
        log.warning("%s: %d of the %d VoxCeleb1 utterances under %s are in no set (e.g. %s)", src, len(unlisted),
                    len(utts), root, unlisted[0])
    train_spk = {u.spk for u in sets["sid_train"]}
    for name in ("sid_dev", "sid_test"):
        unseen = sorted({u.spk for u in sets[name]} - train_spk)
        if unseen:
            log.warning("%s: %d speakers of %s (set %s) have no train utterance (set 1), e.g. %s", src, len(unseen),
                        name, SID_SETS[name], unseen[0])
    return {name: sorted(us, key=lambda u: u.utt) for name, us in sets.items()}


def prepare_vox1(root: Path, data: Path, iden: tuple[Path, list[str]] | None = None) -> list[Path]:
    """vox1_dev, vox1_test, vox1_all; and, when `iden` = (iden_split.txt, SID data dir names) is given, those
    SID data dirs (checked before anything is written)."""
    root = Path(os.path.abspath(root))  # wav.scp holds absolute paths
    if not root.is_dir():
        raise CorpusError(f"VoxCeleb1 root {root} is not a directory ({WHERE1})")
    utts = scan(root, [("wav", "wav"), ("*/wav", "wav")], SPK1, "VoxCeleb1", WHERE1)
    if not utts:
        raise CorpusError(f"{root}: no wav/<id1xxxx>/<video>/<nnnnn>.wav files; is this VoxCeleb1? ({WHERE1})")
    meta_file = root / "vox1_meta.csv"
    meta = read_meta(meta_file)
    spks = sorted({u.spk for u in utts.values()})
    unlisted = [s for s in spks if s not in meta]
    if not meta:
        log.info("%s: not found; test speakers are id%d..id%d (the real corpus' test set)", meta_file,
                 TEST_IDS[0], TEST_IDS[-1])
    elif unlisted:
        log.warning("%s: %d speakers on disk are not listed (e.g. %s); the id range decides their set",
                    meta_file, len(unlisted), unlisted[0])

    def is_test(spk: str) -> bool:
        return meta[spk]["set"] == "test" if spk in meta else int(spk[2:]) in TEST_IDS

    everything = [utts[k] for k in sorted(utts)]
    parts = {data / "vox1_dev": [u for u in everything if not is_test(u.spk)],
             data / "vox1_test": [u for u in everything if is_test(u.spk)],
             data / "vox1_all": everything}
    for d in [d for d, us in parts.items() if not us]:
        log.warning("%s not made: no %s speakers under %s (%s)", d, d.name.split("_")[1], root, WHERE1)
        del parts[d]
    iden_stamp = ""
    if iden is not None:
        src, names = iden
        sid = read_iden_split(src, utts, root)
        for name in names:
            if not sid[name]:
                raise CorpusError(f"{src}: no line of set {SID_SETS[name]}, so {data / name} cannot be made; "
                                  f"leave {name} out of the SID sets, or give the full {IDEN_SPLIT} ({WHERE_IDEN})")
            parts[data / name] = sid[name]
        iden_stamp = f" iden={os.path.abspath(src)} {src.stat().st_size} {src.stat().st_mtime_ns}"
    meta_stamp = f"{meta_file.stat().st_mtime_ns}" if meta_file.is_file() else "no-meta"
    sources = sources_stamp([u.path for u in everything])
    genders = {s: m["gender"] for s, m in meta.items() if "gender" in m}

    def stamp(d: Path) -> str:
        return f"{root} {d.name} meta={meta_stamp} {sources}" + (iden_stamp if d.name in SID_SETS else "")

    write_dirs(parts, stamp, genders, "VoxCeleb1")
    return list(parts)


def prepare_vox2(root: Path, data: Path) -> Path:
    root = Path(os.path.abspath(root))  # wav.scp holds absolute paths
    if not root.is_dir():
        raise CorpusError(f"VoxCeleb2 root {root} is not a directory ({WHERE2})")
    layouts = [("dev/aac", "m4a"), ("aac", "m4a"), ("dev/wav", "wav"), ("wav", "wav")]
    utts = scan(root, layouts, SPK2, "VoxCeleb2", WHERE2)
    if not utts:
        raise CorpusError(f"{root}: no dev/aac/<id0xxxx>/<video>/<nnnnn>.m4a (or dev/wav/.../*.wav, wav/.../*.wav) "
                          f"files; is this VoxCeleb2? ({WHERE2})")
    everything = [utts[k] for k in sorted(utts)]
    check_ffmpeg(everything, root)
    meta_file = root / "vox2_meta.csv"
    genders = {s: m["gender"] for s, m in read_meta(meta_file).items() if "gender" in m}
    meta_stamp = f"{meta_file.stat().st_mtime_ns}" if meta_file.is_file() else "no-meta"
    dest = data / "vox2_dev"
    stamp = f"{root} vox2_dev meta={meta_stamp} " + sources_stamp([u.path for u in everything])
    write_dirs({dest: everything}, lambda d: stamp, genders, "VoxCeleb2")
    return dest


def trial_utt(field: str) -> str | None:
    """`id10270/x6uYqmx31kE/00001.wav` (a field of a trial list or of iden_split.txt) -> `id10270-x6uYqmx31kE-00001`;
    None when not of that form."""
    parts = field.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return utt_id(parts[0], parts[1], parts[2].rsplit(".", 1)[0])


def convert_trials(src: Path, dest: Path, against: Path) -> int:
    """A VoxCeleb trial list as Kaldi trials, every utterance checked against the data dir `against`."""
    stamp = f"{src} {src.stat().st_size} {src.stat().st_mtime_ns} {against}[{(against / '.done').read_text().strip()}]"
    done = dest.with_name(f".{dest.name}.done")
    if dest.is_file() and done.is_file() and done.read_text().strip() == stamp:
        log.info("%s is up to date", dest)
        return sum(1 for _ in dest.open())
    utts = set(datadir.DataDir(against).utt_ids())
    out = []
    for n, line in enumerate(src.read_text().splitlines(), 1):
        if not line.strip():
            continue
        f = line.split()
        pair = [trial_utt(x) for x in f[1:]]
        if len(f) != 3 or f[0] not in ("0", "1") or None in pair:
            raise CorpusError(f"{src}:{n}: expected `1|0 <spk>/<video>/<nnnnn>.wav <spk>/<video>/<nnnnn>.wav`, "
                              f"got {line!r}")
        for x, u in zip(f[1:], pair, strict=True):
            if u not in utts:
                hint = " (the E and H lists need all of VoxCeleb1, dev and test)" if against.name == "vox1_all" else ""
                raise CorpusError(f"{src}:{n}: {x} (utterance {u}) is not in {against}{hint}")
        out.append(f"{pair[0]} {pair[1]} {'target' if f[0] == '1' else 'nontarget'}\n")
    if not out:
        raise CorpusError(f"{src}: no trials")
    done.unlink(missing_ok=True)
    datadir.atomic_write_text(dest, "".join(out))
    done.write_text(stamp + "\n")
    n_target = sum(x.endswith(" target\n") for x in out)
    log.info("%s: %d trials (%d target) from %s", dest, len(out), n_target, src)
    return len(out)


def make_train(data: Path, train_sets: list[str]) -> Path:
    """data/train = the union of `train_sets`; left as it is while they are unchanged."""
    parts = [data / s for s in dict.fromkeys(train_sets)]
    absent = [p for p in parts if not (p / ".done").is_file()]
    if absent:
        need = {"vox2_dev": "--vox2_root (VoxCeleb2 dev)", "vox1_dev": "--vox1_root (VoxCeleb1)"}
        raise CorpusError(f"{data / 'train'}: {' '.join(map(str, absent))} not prepared; give "
                          + " and ".join(need[p.name] for p in absent)
                          + f", or leave {' '.join(p.name for p in absent)} out of the train sets")
    return combine_prepared(data / "train", parts)


def prepare(vox1_root: str | Path | None, vox2_root: str | Path | None, data: str | Path,
            train_sets: list[str] | None = None, trials_dir: str | Path | None = None,
            trial_lists: list[str] | None = None, iden_split: str | Path | None = None,
            sid_sets: list[str] | None = None) -> list[Path]:
    """Every data dir and trial list the roots given allow (see the module docstring); data/train from
    `train_sets` (default vox2_dev; empty: no data/train, e.g. to prepare only the test side).
    `trial_lists` (names of TRIAL_LISTS): exactly these are made, and one that cannot be made is an error;
    None: those whose source is there (the others are named in an INFO line).
    `sid_sets` (names of SID_SETS): these speaker identification data dirs are made from `iden_split`
    (default <vox1_root>/iden_split.txt), which must be there; None: all three when `iden_split` is given,
    else none."""
    data = Path(data)
    train_sets = list(train_sets) if train_sets is not None else ["vox2_dev"]
    bad = [s for s in train_sets if s not in TRAIN_PARTS]
    if bad:
        raise CorpusError(f"train sets {bad} not allowed: choose from {list(TRAIN_PARTS)} "
                          "(the VoxCeleb1 test speakers are those of the trial lists)")
    unknown = [t for t in trial_lists or [] if t not in TRIAL_LISTS]
    if unknown:
        raise CorpusError(f"trial lists {unknown} unknown: choose from {list(TRIAL_LISTS)}")
    if vox1_root is None and vox2_root is None:
        raise CorpusError(f"give the VoxCeleb1 root, the VoxCeleb2 root, or both ({WHERE1}; {WHERE2})")
    if trial_lists and vox1_root is None:
        raise CorpusError(f"trial lists {trial_lists} asked for, but no VoxCeleb1 root: they need VoxCeleb1 "
                          f"({WHERE1}); give it, or ask for no trial lists")
    unknown = [s for s in sid_sets or [] if s not in SID_SETS]
    if unknown:
        raise CorpusError(f"SID sets {unknown} unknown: choose from {list(SID_SETS)}")
    sid = list(dict.fromkeys(sid_sets)) if sid_sets is not None else list(SID_SETS) if iden_split is not None else []
    if sid and vox1_root is None:
        raise CorpusError(f"SID sets {sid} asked for, but no VoxCeleb1 root: {IDEN_SPLIT} lists VoxCeleb1 files "
                          f"({WHERE1}); give it, or ask for no SID sets")
    iden_src = Path(iden_split) if iden_split is not None else Path(vox1_root) / IDEN_SPLIT if vox1_root else None
    iden = None
    if sid:
        assert iden_src is not None
        if not iden_src.is_file():
            raise CorpusError(f"SID sets {sid} asked for, but {iden_src} is not there ({WHERE_IDEN}; "
                              "--iden_split names where it is)")
        iden = (iden_src, sid)
    elif iden_src is not None and iden_src.is_file():
        log.info("%s not made: not asked for (--sid_sets %s)", " ".join(str(data / s) for s in SID_SETS),
                 " ".join(SID_SETS))
    out: list[Path] = []
    if vox1_root is not None:
        out += prepare_vox1(Path(vox1_root), data, iden)
    if vox2_root is not None:
        out.append(prepare_vox2(Path(vox2_root), data))
    if vox1_root is None:
        log.info("no trial lists: they need VoxCeleb1 (%s)", WHERE1)
    else:
        tdir = Path(trials_dir) if trials_dir is not None else Path(vox1_root)
        asked = trial_lists is not None
        for name in trial_lists if asked else TRIAL_LISTS:
            file, against = TRIAL_LISTS[name]
            src, dest = tdir / file, data / "trials" / name
            if not src.is_file():
                if asked:
                    raise CorpusError(f"trial list {name} asked for, but its source {src} is not there "
                                      f"({WHERE_TRIALS}; --trials_dir names where they are)")
                log.info("%s not made: no %s (%s)", dest, src, WHERE_TRIALS)
                continue
            if not (data / against / ".done").is_file():
                if asked:
                    raise CorpusError(f"trial list {name} asked for, but {data / against} (the utterances it "
                                      f"uses) is not prepared: {src} needs the VoxCeleb1 "
                                      f"{'test' if against == 'vox1_test' else 'dev and test'} speakers ({WHERE1})")
                log.info("%s not made: %s not prepared", dest, data / against)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            convert_trials(src, dest, data / against)
            out.append(dest)
    if train_sets:
        out.append(make_train(data, train_sets))
    else:
        log.info("%s not made: no train sets asked for", data / "train")
    return out
