"""LibriSpeech (openslr 12) and the Libri-light limited-supervision sets:
    <root>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac and <spk>-<chapter>.trans.txt,
    <root>/SPEAKERS.TXT (`ID | SEX | SUBSET | MINUTES | NAME`).
Data dirs are named after the subsets with `-` -> `_` (train_clean_100, dev_clean, ...); speakers are
`<spk>-<chapter>` as in Kaldi's and ESPnet's recipes."""
from __future__ import annotations

import logging
from pathlib import Path

from wavlm.data.corpora.common import CorpusError, present_subsets, sources_stamp, up_to_date, write_prepared

log = logging.getLogger(__name__)

SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")
WHERE = "download the subsets from openslr.org resource 12 and unpack them (LibriSpeech/<subset>/...)"


def read_genders(root: Path) -> dict[str, str]:
    genders = {}
    path = root / "SPEAKERS.TXT"
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


def prepare_subset(src: Path, dest: Path, genders: dict[str, str]) -> None:
    flacs = sorted(src.glob("*/*/*.flac"))
    transcripts = sorted(src.glob("*/*/*.trans.txt"))
    if not flacs:
        raise CorpusError(f"{src}: no <spk>/<chapter>/*.flac files; is this a LibriSpeech subset? ({WHERE})")
    stamp = f"{src} " + sources_stamp(flacs + transcripts)
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return
    wav = {f.stem: str(f) for f in flacs}
    text: dict[str, str] = {}
    for t in transcripts:
        for n, line in enumerate(t.read_text().splitlines(), 1):
            utt, _, words = line.partition(" ")
            if not words.strip():
                raise CorpusError(f"{t}:{n}: expected `<utt-id> <TRANSCRIPT>`, got {line!r}")
            text[utt] = words.strip()
    missing = sorted(set(wav) - set(text))
    if missing:
        raise CorpusError(f"{src}: {len(missing)} flac files have no transcript line, e.g. {missing[0]} "
                          f"(expected in {missing[0].rsplit('-', 1)[0]}.trans.txt)")
    orphans = sorted(set(text) - set(wav))
    if orphans:
        raise CorpusError(f"{src}: {len(orphans)} transcript lines have no flac file, e.g. {orphans[0]}")
    utt2spk = {u: u.rsplit("-", 1)[0] for u in wav}
    files = {"wav.scp": wav, "text": text, "utt2spk": utt2spk}
    spk2gender = {s: genders[s.split("-")[0]] for s in set(utt2spk.values()) if s.split("-")[0] in genders}
    if spk2gender:
        files["spk2gender"] = spk2gender
    write_prepared(dest, files, stamp, need_text=True)


def prepare(root: str | Path, data: str | Path, subsets: list[str] | None = None) -> list[Path]:
    root, data = Path(root), Path(data)
    if not root.is_dir():
        raise CorpusError(f"LibriSpeech root {root} is not a directory; expected LibriSpeech/ holding "
                          f"train-clean-100/, dev-clean/, ... ({WHERE})")
    present = present_subsets(root, subsets, list(SUBSETS), "train-clean-100/<spk>/<chapter>/*.flac", WHERE)
    genders = read_genders(root)
    out = []
    for s in present:
        dest = data / s.replace("-", "_")
        prepare_subset(root / s, dest, genders)
        out.append(dest)
    return out
