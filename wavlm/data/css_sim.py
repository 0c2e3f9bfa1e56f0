"""Training mixtures for continuous speech separation (CSS), LibriCSS-style, written to disk.

Each segment is `segment_seconds` long and holds at most two active speakers, drawn from a Kaldi data
dir of single-speaker utterances (e.g. LibriSpeech train):
  * "overlap" (probability `overlap_prob`): speaker 1's utterance at a random offset and speaker 2's
    overlapping it by a ratio r ~ U(overlap_ratio) (which one starts first is random);
  * "single" (probability `single_prob`): speaker 1 alone at a random offset;
  * "gap" (the rest): both speakers, one after the other, with a silence ~ U(gap_seconds) in between.
The overlap ratio is that of LibriCSS: time with two active speakers over time with at least one
(0 for "single" and "gap"). Utterances are cropped when the layout would not fit the segment.
Speaker 2 is scaled to U(sir_db) dB below/above speaker 1 (dry signals, equal-RMS reference).

Both are reverberated in a random shoebox room (pyroomacoustics image method; room size, RT60, array
and source positions drawn per segment) and recorded by the LibriCSS array: 6 mics on a 4.25 cm
circle plus the centre mic, which is channel 0 and the reference (`channels: 1` keeps only it).
Diffuse-ish noise (coloured noise, or crops of a noise data dir, mixed across channels with the
spherically isotropic coherence sinc(2 pi f d / c)) is added at SNR ~ U(snr_db), measured at the
reference mic against the reverberant speech of both speakers over the whole segment.

Targets (single channel, at the reference mic, same scale and alignment as the mixture): each
speaker's early image (direct path plus the first `early_ms` ms of its RIR) and the noise, so
  mixture[0] = spk1 + spk2 + noise + late reverberation of both speakers.
spk2 is all zeros for "single" segments. The whole segment is scaled to a peak of `peak`.

Why on disk and not on the fly: every segment is a pure function of (seed, segment index), so a
training set can be rebuilt bit for bit, listened to and inspected (segments_info.json records each
layout, room and level), and is reused unchanged across epochs; generating on the fly would run the
room simulation and multi-channel convolutions for every batch, costing far more than reading wavs.
"""
from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.data.audio import read_utterance
from wavlm.data.datadir import DataDir, DataDirError, c_sorted

logger = logging.getLogger(__name__)

ARRAY_RADIUS = 0.0425  # LibriCSS: 6 mics on a 4.25 cm circle plus the centre
SOUND_SPEED = 343.0
KINDS = ("overlap", "single", "gap")


class CssSimError(ValueError):
    """Unusable input or config for the CSS simulation; the message names the file or key."""


@dataclass
class CssSimConfig:
    segment_seconds: float = 4.0
    sample_rate: int = 16000
    channels: int = 7  # 7: the LibriCSS array; 1: its centre mic only
    overlap_prob: float = 0.5  # two speakers overlapping
    single_prob: float = 0.2  # one speaker; the rest: two speakers separated by a gap
    overlap_ratio: tuple[float, float] | list[float] = (0.1, 1.0)  # overlapped / active time
    gap_seconds: tuple[float, float] | list[float] = (0.1, 1.0)
    sir_db: tuple[float, float] | list[float] = (-5.0, 5.0)  # speaker 1 over speaker 2, dry
    snr_db: tuple[float, float] | list[float] = (5.0, 20.0)  # reverberant speech over noise, ref mic
    rt60: tuple[float, float] | list[float] = (0.15, 0.6)
    room_min: tuple[float, float, float] | list[float] = (3.0, 3.0, 2.5)  # metres, x y z
    room_max: tuple[float, float, float] | list[float] = (10.0, 8.0, 4.0)
    array_height: tuple[float, float] | list[float] = (0.6, 1.2)
    source_height: tuple[float, float] | list[float] = (1.0, 1.9)
    wall_margin: float = 0.5  # array and sources keep this far from the walls
    min_source_distance: float = 0.5  # from the array centre
    max_order: int = 40  # cap on the image-source order (bounds the cost of long RT60s)
    early_ms: float = 50.0  # early image = RIR up to the direct path + this
    noise_colour: tuple[float, float] | list[float] = (0.0, 2.0)  # 1/f^c spectrum, c drawn per segment
    noise_data: str | None = None  # Kaldi data dir of noise recordings (instead of coloured noise)
    peak: float = 0.9
    wav_subtype: str = "PCM_16"  # soundfile subtype of the written wavs (PCM_16 or FLOAT)

    def check(self) -> None:
        def rng(name: str, lo_min: float = -np.inf, hi_max: float = np.inf) -> None:
            v = getattr(self, name)
            if len(v) != 2 or not lo_min <= v[0] <= v[1] <= hi_max:
                raise CssSimError(f"css config: {name} must be [lo, hi] with {lo_min} <= lo <= hi <= {hi_max}, "
                                  f"got {list(v)}")

        if self.channels not in (1, 7):
            raise CssSimError(f"css config: channels must be 7 (LibriCSS array) or 1 (centre mic), got {self.channels}")
        if self.overlap_prob < 0 or self.single_prob < 0 or self.overlap_prob + self.single_prob > 1 + 1e-9:
            raise CssSimError(f"css config: overlap_prob ({self.overlap_prob}) and single_prob ({self.single_prob}) "
                              "must be >= 0 and sum to at most 1")
        rng("overlap_ratio", 1e-3, 1.0)
        rng("gap_seconds", 0.0, self.segment_seconds / 2)
        rng("rt60", 0.05)
        for name in ("sir_db", "snr_db", "noise_colour", "array_height", "source_height"):
            rng(name)
        if len(self.room_min) != 3 or len(self.room_max) != 3 or any(
                a > b or a < 2 * self.wall_margin + 0.2 for a, b in zip(self.room_min, self.room_max, strict=True)):
            raise CssSimError(f"css config: room_min {list(self.room_min)} / room_max {list(self.room_max)} must be "
                              f"x y z with min <= max and min > 2 * wall_margin + 0.2")
        if self.source_height[1] > self.room_min[2] - self.wall_margin or \
                self.array_height[1] > self.room_min[2] - self.wall_margin:
            raise CssSimError("css config: source/array heights must stay below room_min z - wall_margin")
        if self.segment_seconds <= 0 or self.sample_rate <= 0 or self.early_ms < 0 or self.max_order < 0:
            raise CssSimError("css config: segment_seconds, sample_rate, early_ms, max_order must be positive")
        if self.wav_subtype not in ("PCM_16", "PCM_24", "FLOAT"):
            raise CssSimError(f"css config: wav_subtype must be PCM_16, PCM_24 or FLOAT, got {self.wav_subtype}")


@dataclass
class Segment:
    """One simulated segment: [C, S] mixture and [S] targets, plus what was drawn."""

    mixture: np.ndarray
    spk1: np.ndarray
    spk2: np.ndarray
    noise: np.ndarray
    info: dict


def segment_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of segment `index`: depends on (seed, index) only, not on the job split."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index),
                                                         zlib.crc32(b"css_sim")]))


def mic_positions(centre: np.ndarray, rotation: float = 0.0) -> np.ndarray:
    """[3, 7]: the centre mic first, then 6 mics every 60 degrees on a 4.25 cm circle."""
    ang = rotation + np.arange(6) * np.pi / 3
    ring = np.stack([ARRAY_RADIUS * np.cos(ang), ARRAY_RADIUS * np.sin(ang), np.zeros(6)])
    return np.asarray(centre, dtype=np.float64)[:, None] + np.concatenate([np.zeros((3, 1)), ring], axis=1)


class Speakers:
    """Speakers and their utterances of the input data dir (at least 2 speakers)."""

    def __init__(self, data: DataDir):
        self.data = data
        utt2spk = data.utt2spk()
        by_spk: dict[str, list[str]] = {}
        for u in c_sorted(utt2spk):
            by_spk.setdefault(utt2spk[u], []).append(u)
        self.spks = c_sorted(by_spk)
        self.utts = by_spk
        if len(self.spks) < 2:
            src = data.path / ("utt2spk" if data.has("utt2spk") else "wav.scp")
            raise CssSimError(f"{src}: {len(self.spks)} speaker(s) {self.spks}; CSS mixtures need utterances "
                              "of at least 2 different speakers")

    def draw(self, rng: np.random.Generator) -> tuple[tuple[str, str], tuple[str, str]]:
        """Two different speakers and one utterance of each: ((spk1, utt1), (spk2, utt2))."""
        i, j = rng.choice(len(self.spks), size=2, replace=False)
        out = []
        for k in (i, j):
            spk = self.spks[int(k)]
            out.append((spk, self.utts[spk][int(rng.integers(len(self.utts[spk])))]))
        return out[0], out[1]


class NoiseSource:
    """Noise signals: coloured noise, or random crops of a noise data dir's recordings."""

    def __init__(self, cfg: CssSimConfig):
        self.cfg = cfg
        self.data = DataDir(cfg.noise_data) if cfg.noise_data else None
        self.utts = self.data.utt_ids() if self.data is not None else []
        if self.data is not None and not self.utts:
            raise CssSimError(f"{self.data.path}/wav.scp: no noise recordings")

    def draw(self, n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """[count, n] independent, unit-variance noise signals."""
        if self.data is None:
            colour = float(rng.uniform(*self.cfg.noise_colour))
            return np.stack([coloured_noise(n, colour, rng) for _ in range(count)]), {"noise_colour": colour}
        out, used = [], []
        for _ in range(count):
            utt = self.utts[int(rng.integers(len(self.utts)))]
            x = read_utterance(self.data, utt, self.cfg.sample_rate).astype(np.float64)
            if len(x) < n:
                x = np.tile(x, n // len(x) + 1)
            off = int(rng.integers(0, len(x) - n + 1))
            x = x[off:off + n]
            out.append(x / (np.std(x) + 1e-12))
            used.append(utt)
        return np.stack(out), {"noise_utts": used}


def coloured_noise(n: int, colour: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f^colour power spectrum, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / f ** (colour / 2), n)
    return y / (np.std(y) + 1e-12)


def diffuse_mix(noise: np.ndarray, mics: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix [C, n] independent noises so that channel pairs have the coherence of a spherically isotropic
    field, sinc(2 f d / c) (d: mic distance); channel 0 keeps its expected power spectrum."""
    c, n = noise.shape
    if c == 1:
        return noise
    d = np.linalg.norm(mics[:, :, None] - mics[:, None, :], axis=0)  # [C, C]
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gamma = np.sinc(2 * f[:, None, None] * d[None] / SOUND_SPEED)  # np.sinc(x) = sin(pi x) / (pi x)
    w, v = np.linalg.eigh(gamma)
    mix = v * np.sqrt(np.clip(w, 0, None))[:, None, :]  # [F, C, C], mix @ mix^T = gamma
    spec = np.fft.rfft(noise, axis=1).T  # [F, C]
    out = np.einsum("fij,fj->fi", mix, spec)
    return np.fft.irfft(out.T, n, axis=1)


def layout(kind: str, len1: int, len2: int, n: int, cfg: CssSimConfig,
           rng: np.random.Generator) -> tuple[list[tuple[int, int]], float | None]:
    """[(start, length)] of speaker 1 (and 2) in a segment of n samples, and the drawn overlap ratio.

    Two speakers: the first to talk starts at a random t0, the other `gap` samples after the first one
    ends (a negative gap is an overlap); utterances are shortened when the layout would not fit."""
    if kind == "single":
        d1 = min(len1, n)
        return [(int(rng.integers(0, n - d1 + 1)), d1)], None
    d1, d2 = float(min(len1, n)), float(min(len2, n))
    target = None
    if kind == "overlap":
        target = float(rng.uniform(*cfg.overlap_ratio))
        if target * (d1 + d2) / (1 + target) > min(d1, d2):  # the shorter inside the longer: shorten that
            if d1 >= d2:
                d1 = d2 / target
            else:
                d2 = d1 / target
        union = (d1 + d2) / (1 + target)
        f = min(1.0, n / union)
        d1, d2 = max(1, int(d1 * f)), max(1, int(d2 * f))
        gap = -min(int(round(target * (d1 + d2) / (1 + target))), d1, d2)
    else:
        gap = int(round(rng.uniform(*cfg.gap_seconds) * cfg.sample_rate))
        f = min(1.0, (n - gap) / (d1 + d2))
        d1, d2 = max(1, int(d1 * f)), max(1, int(d2 * f))
    excess = d1 + d2 + gap - n  # rounding: at most a sample or two
    if excess > 0:
        if d1 >= d2:
            d1 -= excess
        else:
            d2 -= excess
        gap = max(gap, -min(d1, d2))
    union = d1 + d2 + gap
    t0 = int(rng.integers(0, n - union + 1))
    if rng.random() < 0.5:  # speaker 1 talks first
        return [(t0, d1), (t0 + d1 + gap, d2)], target
    return [(t0 + d2 + gap, d1), (t0, d2)], target


def overlap_ratio(placement: list[tuple[int, int]]) -> float:
    """Samples with two active speakers over samples with at least one, from (start, length) pairs."""
    if len(placement) < 2:
        return 0.0
    (a1, d1), (a2, d2) = placement
    ov = max(0, min(a1 + d1, a2 + d2) - max(a1, a2))
    union = d1 + d2 - ov
    return ov / union if union > 0 else 0.0


def _crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    off = int(rng.integers(0, len(x) - length + 1))
    return x[off:off + length]


def _room(cfg: CssSimConfig, n_src: int, rng: np.random.Generator) -> tuple[object, dict]:
    """A shoebox room with the array and n_src sources, RIRs computed; and its description."""
    import pyroomacoustics as pra

    for _ in range(100):
        dims = rng.uniform(cfg.room_min, cfg.room_max)
        rt60 = float(rng.uniform(*cfg.rt60))
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # room too large for so short an RT60: draw again
            continue
        break
    else:
        raise CssSimError(f"css config: no room in {list(cfg.room_min)}..{list(cfg.room_max)} reaches an RT60 in "
                          f"{list(cfg.rt60)} (raise rt60 or shrink the rooms)")
    m = cfg.wall_margin
    centre = np.array([rng.uniform(m, dims[0] - m), rng.uniform(m, dims[1] - m), rng.uniform(*cfg.array_height)])
    rotation = float(rng.uniform(0, 2 * np.pi))
    mics = mic_positions(centre, rotation)[:, : cfg.channels]
    sources = []
    for _ in range(n_src):
        for _ in range(1000):
            pos = np.array([rng.uniform(m, dims[0] - m), rng.uniform(m, dims[1] - m), rng.uniform(*cfg.source_height)])
            if np.linalg.norm(pos[:2] - centre[:2]) >= cfg.min_source_distance:
                break
        sources.append(pos)
    order = min(int(order), cfg.max_order)
    room = pra.ShoeBox(dims, fs=cfg.sample_rate, materials=pra.Material(absorption), max_order=order)
    room.add_microphone_array(pra.MicrophoneArray(mics, cfg.sample_rate))
    for pos in sources:
        room.add_source(pos)
    room.compute_rir()
    info = {"room": [round(float(x), 3) for x in dims], "rt60": round(rt60, 4), "max_order": order,
            "array_centre": [round(float(x), 3) for x in centre], "array_rotation": round(rotation, 4),
            "sources": [[round(float(x), 3) for x in p] for p in sources]}
    return room, info


def _rirs(room: object, src: int, channels: int) -> np.ndarray:
    rir = room.rir  # type: ignore[attr-defined]
    length = max(len(rir[m][src]) for m in range(channels))
    out = np.zeros((channels, length))
    for m in range(channels):
        out[m, : len(rir[m][src])] = rir[m][src]
    return out


def simulate_segment(index: int, seed: int, speakers: Speakers, noises: NoiseSource,
                     cfg: CssSimConfig) -> Segment:
    """Segment `index` of the set made with `seed` (a pure function of both, the data and the config)."""
    import pyroomacoustics as pra
    from scipy.signal import fftconvolve

    rng = segment_rng(seed, index)
    sr = cfg.sample_rate
    n = int(round(cfg.segment_seconds * sr))
    u = rng.random()
    kind = "overlap" if u < cfg.overlap_prob else "single" if u < cfg.overlap_prob + cfg.single_prob else "gap"
    (spk1, utt1), (spk2, utt2) = speakers.draw(rng)
    srcs = [read_utterance(speakers.data, utt1, sr).astype(np.float64)]
    if kind != "single":
        srcs.append(read_utterance(speakers.data, utt2, sr).astype(np.float64))
    placement, target = layout(kind, len(srcs[0]), len(srcs[-1]), n, cfg, rng)
    sir = float(rng.uniform(*cfg.sir_db)) if kind != "single" else None
    dry = np.zeros((len(srcs), n))
    for k, (x, (start, length)) in enumerate(zip(srcs, placement, strict=True)):
        seg = _crop(x, length, rng)
        seg = seg / (np.sqrt(np.mean(seg**2)) + 1e-12)
        if k == 1:
            seg = seg * 10 ** (-sir / 20)
        dry[k, start:start + length] = seg
    room, room_info = _room(cfg, len(srcs), rng)
    fdl = pra.constants.get("frac_delay_length") // 2
    reverb = np.zeros((len(srcs), cfg.channels, n))
    early = np.zeros((2, n))
    for k in range(len(srcs)):
        h = _rirs(room, k, cfg.channels)
        reverb[k] = fftconvolve(dry[k][None], h, axes=1)[:, :n]
        dist = float(np.linalg.norm(room.mic_array.R[:, 0] - np.asarray(room_info["sources"][k])))
        t_direct = fdl + int(round(dist / SOUND_SPEED * sr))
        h_early = h[0, : t_direct + int(round(cfg.early_ms / 1000 * sr)) + 1]
        early[k] = fftconvolve(dry[k], h_early)[:n]
    speech = reverb.sum(0)  # [C, n]
    snr = float(rng.uniform(*cfg.snr_db))  # drawn before the noise: speech is the same for 1 and 7 channels
    raw, noise_info = noises.draw(n, cfg.channels, rng)
    noise = diffuse_mix(raw, room.mic_array.R, sr)
    e_speech = float(np.sum(speech[0] ** 2))
    noise *= np.sqrt(e_speech / (float(np.sum(noise[0] ** 2)) * 10 ** (snr / 10)))
    mixture = speech + noise
    scale = cfg.peak / max(float(np.max(np.abs(mixture))), 1e-12)
    info = {"index": index, "kind": kind, "spk1": spk1, "utt1": utt1,
            "spk2": spk2 if kind != "single" else None, "utt2": utt2 if kind != "single" else None,
            "placement": [[int(s), int(d)] for s, d in placement],
            "overlap_ratio": round(overlap_ratio(placement), 6),
            "target_overlap_ratio": None if target is None else round(target, 6),
            "sir_db": None if sir is None else round(sir, 4), "snr_db": snr, "scale": scale,
            **room_info, **noise_info}
    return Segment(mixture=(mixture * scale).astype(np.float32), spk1=(early[0] * scale).astype(np.float32),
                   spk2=(early[1] * scale).astype(np.float32), noise=(noise[0] * scale).astype(np.float32),
                   info=info)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write [S] or [S, C] audio atomically (temporary name, then rename)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0 - 2**-15), sample_rate, subtype=subtype, format="WAV")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_speakers(data: str | os.PathLike) -> Speakers:
    try:
        return Speakers(DataDir(data))
    except DataDirError as e:
        raise CssSimError(str(e)) from None
