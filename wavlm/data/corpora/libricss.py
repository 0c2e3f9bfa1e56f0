"""LibriCSS (Chen et al. 2020, "Continuous speech separation: dataset and analysis") as released:
    <root>/for_release/<cond>/<session>/record/raw_recording.wav        7 channels, 16 kHz
    <root>/for_release/<cond>/<session>/transcription/meeting_info.txt  tab separated, with the header
        start_time  end_time  speaker  utterance_id  transcription
<cond> is 0S, 0L, OV10, OV20, OV30 or OV40; sessions are named as overlap_ratio_10.0_sil0.1_1.0_session3_actual10.1.
`root` may be the directory holding for_release/ or for_release/ itself.

One data dir per condition, data/libricss_<cond>:
    wav.scp    one recording per session, `<cond>_session<k>` (k from the session name; the session name with
               characters other than [A-Za-z0-9_.] made `_` when the names give no distinct index) -> the
               7-channel raw_recording.wav,
    reco2dur   the recordings' durations,
    segments, text, utt2spk, utt2dur
               one utterance per meeting_info.txt line: `<speaker>-<recording>-<utterance_id>`, the LibriSpeech
               speaker as speaker (a prefix of the utterance id, as Kaldi needs), the reference start and end.
Every recording must be 16 kHz with 7 channels; a meeting_info.txt line that does not parse, or whose times are
not inside the recording, stops the preparation with the file and line.
A data dir that is complete and made from unchanged files is left as it is.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
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

CONDITIONS = ("0S", "0L", "OV10", "OV20", "OV30", "OV40")
SAMPLE_RATE = 16000
NUM_CHANNELS = 7
HEADER = ("start_time", "end_time", "speaker", "utterance_id", "transcription")
RECORDING = Path("record") / "raw_recording.wav"
MEETING_INFO = Path("transcription") / "meeting_info.txt"
TOLERANCE = 0.01  # seconds a reference segment may run past the end of its recording (rounding)
WHERE = ("download LibriCSS (github.com/chenzhuo1011/libri_css, the for_release archive) and unpack it "
         "(for_release/OV10/overlap_ratio_10.0_sil0.1_1.0_session0_actual10.1/record/raw_recording.wav ...)")
SESSION_INDEX = re.compile(r"(?:^|_)session(\d+)(?:_|$)")
SPEAKER = re.compile(r"[^\s-]+")  # the speaker is the prefix of the Kaldi utterance ids: no `-`
UTT = re.compile(r"\S+")


@dataclass(frozen=True)
class Line:
    """One reference utterance of meeting_info.txt."""

    start: float
    end: float
    speaker: str
    utt: str
    text: str
    where: str  # file:line


def release_dir(root: Path) -> Path:
    """The directory holding the condition directories: <root>/for_release, else root itself."""
    if (root / "for_release").is_dir():
        return root / "for_release"
    if any((root / c).is_dir() for c in CONDITIONS):
        return root
    raise CorpusError(f"{root}: neither for_release/ nor condition directories ({', '.join(CONDITIONS)}); "
                      f"is this LibriCSS? ({WHERE})")


def recording_ids(cond: str, sessions: list[Path]) -> dict[Path, str]:
    """`<cond>_session<k>` per session directory, or `<cond>_<sanitized name>` when the names give no
    distinct index."""
    idx = [SESSION_INDEX.search(s.name) for s in sessions]
    if all(idx) and len({m.group(1) for m in idx}) == len(sessions):
        return {s: f"{cond}_session{int(m.group(1))}" for s, m in zip(sessions, idx, strict=True)}
    ids = {s: f"{cond}_" + re.sub(r"[^A-Za-z0-9_.]", "_", s.name) for s in sessions}
    if len(set(ids.values())) != len(ids):
        raise CorpusError(f"{sessions[0].parent}: session names that differ only in characters outside "
                          f"[A-Za-z0-9_.] ({', '.join(s.name for s in sessions)})")
    return ids


def recording_duration(path: Path) -> float:
    """Seconds of a session recording, after checking it is 16 kHz with 7 channels."""
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises several types; name the file
        raise CorpusError(f"{path}: cannot read the audio header: {e}") from None
    if info.samplerate != SAMPLE_RATE or info.channels != NUM_CHANNELS:
        raise CorpusError(f"{path}: {info.channels} channel(s) at {info.samplerate} Hz; LibriCSS recordings are "
                          f"{NUM_CHANNELS} channels at {SAMPLE_RATE} Hz (the 7-mic array; use the raw_recording.wav "
                          "of the release, not a converted copy)")
    if info.frames == 0:
        raise CorpusError(f"{path}: no audio samples")
    return info.frames / info.samplerate


def read_meeting_info(path: Path, duration: float) -> list[Line]:
    """The reference utterances of one session; every problem names the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e})") from None
    if not lines or tuple(f.strip() for f in lines[0].split("\t")) != HEADER:
        got = repr(lines[0]) if lines else "an empty file"
        raise CorpusError(f"{path}:1: expected the header `{chr(9).join(HEADER)}` (tab separated), got {got}")
    out: list[Line] = []
    first: dict[str, str] = {}
    for n, raw in enumerate(lines[1:], 2):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        fields = [f.strip() for f in raw.rstrip("\r").split("\t")]
        if len(fields) != len(HEADER):
            raise CorpusError(f"{where}: expected {len(HEADER)} tab-separated fields ({' '.join(HEADER)}), "
                              f"got {len(fields)}: {raw!r}")
        start_s, end_s, spk, utt, text = fields
        try:
            start, end = float(start_s), float(end_s)
        except ValueError:
            raise CorpusError(f"{where}: start_time {start_s!r} and end_time {end_s!r} must be numbers (seconds)") \
                from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise CorpusError(f"{where}: bad times {start_s} {end_s} (need 0 <= start_time < end_time)")
        if end > duration + TOLERANCE:
            raise CorpusError(f"{where}: utterance {utt} ends at {end:.3f} s, after the end of the recording "
                              f"({duration:.3f} s, {path.parent.parent / RECORDING})")
        if not SPEAKER.fullmatch(spk):
            raise CorpusError(f"{where}: speaker {spk!r} must be one token without whitespace or `-` "
                              "(it is the prefix of the Kaldi utterance ids)")
        if not UTT.fullmatch(utt):
            raise CorpusError(f"{where}: utterance_id {utt!r} must be one token without whitespace")
        if utt in first:
            raise CorpusError(f"{where}: utterance_id {utt} is also on {first[utt]}")
        if not text:
            raise CorpusError(f"{where}: utterance {utt} has no transcription")
        first[utt] = where
        out.append(Line(start, end, spk, utt, " ".join(text.split()), where))
    if not out:
        raise CorpusError(f"{path}: no utterances after the header")
    return out


def prepare_condition(src: Path, dest: Path) -> None:
    """data/libricss_<cond> from for_release/<cond>/ (see the module docstring)."""
    sessions = sorted(p for p in src.iterdir() if p.is_dir())
    if not sessions:
        raise CorpusError(f"{src}: no session directories ({WHERE})")
    for s in sessions:
        for f in (s / RECORDING, s / MEETING_INFO):
            if not f.is_file():
                raise CorpusError(f"{f}: missing; every LibriCSS session has {RECORDING} and {MEETING_INFO} "
                                  f"({WHERE})")
    stamp = f"{src} " + sources_stamp([f for s in sessions for f in (s / RECORDING, s / MEETING_INFO)])
    if up_to_date(dest, stamp):
        log.info("%s is up to date", dest)
        return
    wav: dict[str, str] = {}
    reco2dur: dict[str, str] = {}
    segments: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    for s, rec in recording_ids(src.name, sessions).items():
        dur = recording_duration(s / RECORDING)
        wav[rec] = str(s / RECORDING)
        reco2dur[rec] = f"{dur:.3f}"
        for u in read_meeting_info(s / MEETING_INFO, dur):
            utt = f"{u.speaker}-{rec}-{u.utt}"
            segments[utt] = f"{rec} {u.start:.3f} {min(u.end, dur):.3f}"
            text[utt] = u.text
            utt2spk[utt] = u.speaker
    files = {"wav.scp": wav, "reco2dur": reco2dur, "segments": segments, "text": text, "utt2spk": utt2spk}
    write_prepared(dest, files, stamp, need_text=True)


def prepare(root: str | Path, data: str | Path, conditions: list[str] | None = None) -> list[Path]:
    """data/libricss_<cond> for each condition asked for (default: all six that are present)."""
    root, data = corpus_root(root, "LibriCSS", "for_release/", WHERE), Path(data)
    rel = release_dir(root)
    present = present_subsets(rel, conditions, list(CONDITIONS), f"OV10/<session>/{RECORDING}", WHERE)
    out = []
    for cond in present:
        dest = data / f"libricss_{cond}"
        prepare_condition(rel / cond, dest)
        out.append(dest)
    return out
