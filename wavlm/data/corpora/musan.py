"""Augmentation corpora as Kaldi data dirs: MUSAN (openslr 17: musan/{noise,music,speech}/<source>/*.wav)
-> data/musan_noise, data/musan_music, data/musan_speech; RIRS_NOISES (openslr 28:
RIRS_NOISES/simulated_rirs/<room size>/<Room>/*.wav, real_rirs_isotropic_noises/*.wav) -> data/rirs.
Every recording is its own utterance and speaker (augmentation does not use speakers)."""
from __future__ import annotations

import logging
from pathlib import Path

from wavlm.data.corpora.common import CorpusError, sources_stamp, up_to_date, write_prepared

log = logging.getLogger(__name__)

MUSAN_PARTS = ("noise", "music", "speech")


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
    root, data = Path(root), Path(data)
    parts = subsets or list(MUSAN_PARTS)
    unknown = [p for p in parts if p not in MUSAN_PARTS]
    if unknown:
        raise CorpusError(f"unknown MUSAN parts {unknown}; choose from {list(MUSAN_PARTS)}")
    missing = [p for p in parts if not (root / p).is_dir()]
    if missing:
        raise CorpusError(f"{root}: no {'/, '.join(missing)}/ (MUSAN, openslr.org resource 17: noise/, music/, "
                          "speech/)")
    return [_prepare(sorted((root / p).rglob("*.wav")), data / f"musan_{p}", p, str(root / p)) for p in parts]


def prepare_rirs(root: str | Path, data: str | Path, subsets: list[str] | None = None) -> list[Path]:
    """data/rirs: every simulated RIR and the real ones (subsets are not supported)."""
    if subsets:
        raise CorpusError("rirs has no subsets")
    root, data = Path(root), Path(data)
    files = sorted((root / "simulated_rirs").rglob("*.wav")) + sorted((root / "real_rirs_isotropic_noises").glob(
        "*rir*.wav"))
    if not files:
        raise CorpusError(f"{root}: expected simulated_rirs/<room>/<Room>/*.wav (RIRS_NOISES, openslr.org resource 28)")
    # ids carry the room so that equal file names in different rooms stay apart
    dest = data / "rirs"
    stamp = sources_stamp(files)
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return [dest]
    ids = {"rir-" + "-".join(f.relative_to(root).with_suffix("").parts[1:]): str(f) for f in files}
    if len(ids) != len(files):
        raise CorpusError(f"{root}: two RIR files map to the same id")
    write_prepared(dest, {"wav.scp": ids, "utt2spk": {u: u for u in ids}}, stamp)
    return [dest]
