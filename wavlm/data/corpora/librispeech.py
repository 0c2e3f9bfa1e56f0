"""LibriSpeech (openslr 12) and the Libri-light limited-supervision sets:
    <root>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac and <spk>-<chapter>.trans.txt,
    <root>/SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`).
Data dirs are named after the subsets with `-` -> `_` (train_clean_100, dev_clean, ...); speakers are
`<spk>-<chapter>` as in Kaldi's and ESPnet's recipes. `train_960` is the union of the three training
subsets (made when asked for and all three are prepared).

Libri-light's limited supervision sets (librispeech_finetuning.tgz) hold LibriSpeech training
utterances (same ids) in the same chapter layout, one level deeper:
    <ft_root>/1h/{0..5}/{clean,other}/<spk>/<chapter>/... and <ft_root>/9h/{clean,other}/<spk>/<chapter>/...
As Libri-light and fairseq define them: train_10min = 1h/0, train_1h = 1h/* (the six 10 min parts),
train_10h = 1h/* + 9h."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from wavlm.data.corpora.common import (
    CorpusError,
    combine_prepared,
    corpus_root,
    present_subsets,
    sources_stamp,
    up_to_date,
    write_prepared,
)

log = logging.getLogger(__name__)

SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")
WHERE = "download the subsets from openslr.org resource 12 and unpack them (LibriSpeech/<subset>/...)"
TRAIN_960 = ("train_clean_100", "train_clean_360", "train_other_500")

# data dir -> the directories of librispeech_finetuning/ it is made of (globs; each match holds <spk>/<chapter>/)
FINETUNING_SETS = {
    "train_10min": ("1h/0/*",),
    "train_1h": ("1h/*/*",),
    "train_10h": ("1h/*/*", "9h/*"),
}
FINETUNING_WHERE = ("download librispeech_finetuning.tgz (Libri-light's limited supervision sets, "
                    "github.com/facebookresearch/libri-light) and unpack it (librispeech_finetuning/1h/0/clean/...)")


def read_genders(root: Path) -> dict[str, str]:
    return read_speakers(root / "SPEAKERS.TXT")


def read_speakers(path: Path) -> dict[str, str]:
    """Speaker id -> `m`/`f` from a SPEAKERS.TXT; empty when the file does not exist."""
    genders: dict[str, str] = {}
    if not path.is_file():
        return genders
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2 or parts[1].upper() not in ("M", "F"):
            raise CorpusError(f"{path}:{n}: expected `ID | SEX | SUBSET | MINUTES | NAME`, got {line!r}")
        genders[parts[0]] = parts[1].lower()
    return genders


def prepare_subset(src: Path | Sequence[Path], dest: Path, genders: dict[str, str], where: str = WHERE) -> None:
    """One data dir from one or more directories laid out as `<spk>/<chapter>/*.flac + *.trans.txt`."""
    srcs = [src] if isinstance(src, Path) else list(src)
    flacs: list[Path] = []
    transcripts: list[Path] = []
    for s in srcs:
        found = sorted(s.glob("*/*/*.flac"))
        if not found:
            raise CorpusError(f"{s}: no <spk>/<chapter>/*.flac files; is this a LibriSpeech subset? ({where})")
        flacs += found
        transcripts += sorted(s.glob("*/*/*.trans.txt"))
    stamp = " ".join(map(str, srcs)) + " " + sources_stamp(flacs + transcripts)
    label = str(srcs[0]) if len(srcs) == 1 else dest.name
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return
    wav: dict[str, str] = {}
    for f in flacs:
        if f.stem in wav:
            raise CorpusError(f"{f} and {wav[f.stem]} are both utterance {f.stem}")
        wav[f.stem] = str(f)
    text: dict[str, str] = {}
    origin: dict[str, str] = {}
    for t in transcripts:
        for n, line in enumerate(t.read_text().splitlines(), 1):
            utt, _, words = line.partition(" ")
            if not words.strip():
                raise CorpusError(f"{t}:{n}: expected `<utt-id> <TRANSCRIPT>`, got {line!r}")
            if utt in text:
                raise CorpusError(f"{t}:{n}: utterance {utt} is also transcribed in {origin[utt]}")
            text[utt] = words.strip()
            origin[utt] = f"{t}:{n}"
    missing = sorted(set(wav) - set(text))
    if missing:
        flac = Path(wav[missing[0]])
        raise CorpusError(f"{label}: {len(missing)} flac files have no transcript line, e.g. {missing[0]} "
                          f"(expected in {flac.parent / (missing[0].rsplit('-', 1)[0] + '.trans.txt')})")
    orphans = sorted(set(text) - set(wav))
    if orphans:
        raise CorpusError(f"{label}: {len(orphans)} transcript lines have no flac file, e.g. {orphans[0]} "
                          f"({origin[orphans[0]]})")
    utt2spk = {u: u.rsplit("-", 1)[0] for u in wav}
    files = {"wav.scp": wav, "text": text, "utt2spk": utt2spk}
    spk2gender = {s: genders[s.split("-")[0]] for s in set(utt2spk.values()) if s.split("-")[0] in genders}
    if spk2gender:
        files["spk2gender"] = spk2gender
    write_prepared(dest, files, stamp, need_text=True)


def make_train_960(data: Path) -> Path | None:
    """data/train_960 = train_clean_100 + train_clean_360 + train_other_500, when all three are prepared;
    left as it is while the three are unchanged."""
    parts = [data / p for p in TRAIN_960]
    absent = [p for p in parts if not (p / ".done").is_file()]
    if absent:
        log.info("%s not made: %s not prepared (needs LibriSpeech/%s)", data / "train_960",
                 " ".join(str(p) for p in absent), " ".join(p.name.replace("_", "-") for p in absent))
        return None
    return combine_prepared(data / "train_960", parts, need_text=True)


def prepare(root: str | Path, data: str | Path, subsets: list[str] | None = None,
            combine_960: bool = False) -> list[Path]:
    root, data = corpus_root(root, "LibriSpeech", "train-clean-100/, dev-clean/, ...", WHERE), Path(data)
    present = present_subsets(root, subsets, list(SUBSETS), "train-clean-100/<spk>/<chapter>/*.flac", WHERE)
    genders = read_genders(root)
    out = []
    for s in present:
        dest = data / s.replace("-", "_")
        prepare_subset(root / s, dest, genders)
        out.append(dest)
    if combine_960:
        d = make_train_960(data)
        if d is not None:
            out.append(d)
    return out


def prepare_finetuning(root: str | Path, data: str | Path, subsets: list[str] | None = None,
                       speakers: str | Path | None = None) -> list[Path]:
    """data/train_10min, train_1h, train_10h (or those in `subsets`) from librispeech_finetuning/.
    `speakers`: a LibriSpeech SPEAKERS.TXT for spk2gender (default: <root>/SPEAKERS.TXT if there)."""
    root, data = corpus_root(root, "librispeech_finetuning", "1h/ and 9h/", FINETUNING_WHERE), Path(data)
    unknown = [s for s in subsets or [] if s not in FINETUNING_SETS]
    if unknown:
        raise CorpusError(f"unknown Libri-light fine-tuning sets {unknown}; choose from {list(FINETUNING_SETS)}")
    if speakers is not None and not Path(speakers).is_file():
        raise CorpusError(f"speaker list {speakers} does not exist (expected LibriSpeech/SPEAKERS.TXT)")
    genders = read_speakers(Path(speakers) if speakers is not None else root / "SPEAKERS.TXT")
    out = []
    for name in subsets or list(FINETUNING_SETS):
        srcs: list[Path] = []
        for pattern in FINETUNING_SETS[name]:
            found = sorted(p for p in root.glob(pattern) if p.is_dir())
            if not found:
                raise CorpusError(f"{root}: no {pattern}/ directories for {name} ({FINETUNING_WHERE})")
            srcs += found
        dest = data / name
        prepare_subset(srcs, dest, genders, FINETUNING_WHERE)
        out.append(dest)
    return out
