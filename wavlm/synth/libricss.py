"""Synthetic LibriCSS: mini-sessions of LibriSpeech-style utterances, simulated with pyroomacoustics.

Released layout under OUT (as `for_release` of the real corpus):
  LibriCSS/for_release/<cond>/<session>/record/raw_recording.wav        7 channels, 16 kHz
  LibriCSS/for_release/<cond>/<session>/transcription/meeting_info.txt  tab separated, with the header
      start_time  end_time  speaker  utterance_id  transcription
Conditions 0S (0.1-0.5 s silences), 0L (2.9-3.0 s), OV10..OV40 (overlap ratio 10..40 %); session names
as the real ones, e.g. overlap_ratio_10.0_sil0.1_1.0_session0_actual10.3, "actual" being the measured
overlap: time with two or more active talkers over the time with at least one.
Extra, outside the released tree (for training separation):
  LibriCSS/source_images/<cond>/<session>/<spk>.wav  each speaker's reverberant image at the reference
  (centre, channel 0) mic, same scale as the recording (their sum plus noise is its channel 0).
The array is a circular 7-mic array: 6 mics on a 4.25 cm radius plus the centre.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.synth.common import SAMPLE_RATE, rng_for, write_audio, write_lines
from wavlm.synth.effects import coloured_noise, convolve
from wavlm.synth.speech import make_voices
from wavlm.synth.utterances import Speaker, sentences, speak, unique_ids

logger = logging.getLogger(__name__)

CONDITIONS = ("0S", "0L", "OV10", "OV20", "OV30", "OV40")
SILENCE = {"0S": (0.1, 0.5), "0L": (2.9, 3.0)}
ARRAY_RADIUS = 0.0425


@dataclass
class LibriCSSConfig:
    conditions: tuple[str, ...] = CONDITIONS
    num_sessions: int = 1  # per condition (real: 10)
    session_speakers: int = 4  # real: 8
    session_utts: int = 8
    num_workers: int = 2


def mic_positions(centre: np.ndarray) -> np.ndarray:
    """[3, 7]: the centre mic first, then 6 mics every 60 degrees."""
    ang = np.arange(6) * np.pi / 3
    ring = np.stack([ARRAY_RADIUS * np.cos(ang), ARRAY_RADIUS * np.sin(ang), np.zeros(6)])
    return centre[:, None] + np.concatenate([np.zeros((3, 1)), ring], axis=1)


def room_rirs(rng: np.random.Generator, n_src: int) -> list[np.ndarray]:
    """One [7, L] RIR per loudspeaker position in a random office room."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(5, 8), rng.uniform(4, 7), rng.uniform(2.7, 3.2)])
    rt60 = float(rng.uniform(0.2, 0.4))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 12))
    centre = np.array([dims[0] / 2 + rng.uniform(-0.5, 0.5), dims[1] / 2 + rng.uniform(-0.5, 0.5), 0.8])
    room.add_microphone_array(pra.MicrophoneArray(mic_positions(centre), SAMPLE_RATE))
    angles = rng.permutation(n_src) * 2 * np.pi / n_src + rng.uniform(0, 2 * np.pi / n_src)
    for a in angles:
        d = rng.uniform(0.8, 1.6)
        pos = centre + np.array([d * np.cos(a), d * np.sin(a), rng.uniform(0.4, 0.8)])
        room.add_source(np.clip(pos, 0.3, dims - 0.3))
    room.compute_rir()
    out = []
    for s in range(n_src):
        length = max(len(room.rir[m][s]) for m in range(7))
        r = np.zeros((7, length))
        for m in range(7):
            r[m, : len(room.rir[m][s])] = room.rir[m][s]
        out.append(r / np.max(np.abs(r)))
    return out


def schedule(durs: list[float], cond: str, rng: np.random.Generator) -> list[float]:
    """Start times: silences for 0S/0L; for OVxx each turn overlaps the previous one so that the overlap
    ratio (overlapped time / speech time) tracks the target."""
    starts = [float(rng.uniform(0.5, 1.0))]
    if cond in SILENCE:
        lo, hi = SILENCE[cond]
        for i in range(1, len(durs)):
            starts.append(starts[-1] + durs[i - 1] + float(rng.uniform(lo, hi)))
        return starts
    r = int(cond[2:]) / 100
    total_ov = 0.0
    for i in range(1, len(durs)):
        want = r / (1 + r) * sum(durs[: i + 1]) - total_ov
        ov = float(np.clip(want, 0.0, 0.8 * min(durs[i - 1], durs[i])))
        if ov < 0.05:
            ov = -float(rng.uniform(0.1, 1.0))  # a short silence instead
        starts.append(starts[-1] + durs[i - 1] - ov)
        total_ov += max(ov, 0.0)
    return starts


def overlap_ratio(segments: list[tuple[float, float]], total: float) -> float:
    """100 * time with >= 2 active segments / time with >= 1 (on a 1 ms grid)."""
    n = int(np.ceil(total * 1000)) + 1
    count = np.zeros(n, dtype=np.int32)
    for s, e in segments:
        count[int(round(s * 1000)) : int(round(e * 1000))] += 1
    speech = int(np.sum(count >= 1))
    return 100.0 * int(np.sum(count >= 2)) / speech if speech else 0.0


def session_name(cond: str, k: int, actual: float) -> str:
    if cond in SILENCE:
        lo, hi = SILENCE[cond]
        return f"overlap_ratio_0.0_sil{lo}_{hi}_session{k}_actual{actual:.1f}"
    return f"overlap_ratio_{float(cond[2:]):.1f}_sil0.1_1.0_session{k}_actual{actual:.1f}"


def generate(out: Path, cfg: LibriCSSConfig, seed: int) -> None:
    bad = [c for c in cfg.conditions if c not in CONDITIONS]
    if bad:
        raise ValueError(f"unknown LibriCSS conditions {bad}; choose from {list(CONDITIONS)}")
    if cfg.session_speakers < 2:
        raise ValueError("a LibriCSS session needs at least 2 speakers")
    root = out / "LibriCSS"
    for cond in cfg.conditions:
        for k in range(cfg.num_sessions):
            _session(root, cond, k, cfg, seed)


def _session(root: Path, cond: str, k: int, cfg: LibriCSSConfig, seed: int) -> None:
    rng = rng_for(seed, "libricss", cond, k)
    voices = make_voices(cfg.session_speakers, rng)
    spks = [Speaker(str(i), v) for i, v in zip(unique_ids(rng, len(voices), 19, 9000), voices, strict=True)]
    chapters = unique_ids(rng, len(spks), 1000, 300000)
    order = [int(i) for i in rng.permutation(len(spks))]
    while len(order) < cfg.session_utts:  # no speaker talks twice in a row
        nxt = int(rng.integers(len(spks)))
        if nxt != order[-1]:
            order.append(nxt)
    order = order[: cfg.session_utts]
    texts = sentences(rng, len(order), max_clauses=3)
    audios = speak([(t, spks[i].voice) for t, i in zip(texts, order, strict=True)], rng, cfg.num_workers)
    durs = [len(x) / SAMPLE_RATE for x in audios]
    starts = schedule(durs, cond, rng)
    total = max(s + d for s, d in zip(starts, durs, strict=True)) + float(rng.uniform(0.5, 1.0))
    n = int(round(total * SAMPLE_RATE))
    rirs = room_rirs(rng, len(spks))
    images = np.zeros((len(spks), 7, n), dtype=np.float32)
    counters = [0] * len(spks)
    rows = []
    for x, i, s, t in zip(audios, order, starts, texts, strict=True):
        a = int(round(s * SAMPLE_RATE))
        for m in range(7):
            images[i, m, a : a + len(x)] += convolve(x, rirs[i][m])
        uid = f"{spks[i].id}-{chapters[i]}-{counters[i]:04d}"
        counters[i] += 1
        rows.append((s, s + len(x) / SAMPLE_RATE, spks[i].id, uid, t))
    mix = images.sum(0)
    noise = np.stack([coloured_noise(n, 1.0, rng) for _ in range(7)]) * 10 ** (-35 / 20) * np.std(mix)
    mix = mix + noise
    scale = 0.8 / np.max(np.abs(mix))
    actual = overlap_ratio([(r[0], r[1]) for r in rows], total)
    sess = session_name(cond, k, actual)
    d = root / "for_release" / cond / sess
    write_audio(d / "record" / "raw_recording.wav", (mix * scale).T)
    write_lines(
        d / "transcription" / "meeting_info.txt",
        ["start_time\tend_time\tspeaker\tutterance_id\ttranscription"]
        + [f"{s:.3f}\t{e:.3f}\t{spk}\t{uid}\t{t}" for s, e, spk, uid, t in sorted(rows)],
    )
    for i, spk in enumerate(spks):
        write_audio(root / "source_images" / cond / sess / f"{spk.id}.wav", images[i, 0] * scale)
    logger.info("LibriCSS %s/%s: %.1f s, %d utterances", cond, sess, total, len(rows))
