"""Room impulse responses and noises in the layout of openslr 28 (RIRS_NOISES).

Layout under OUT/RIRS_NOISES, as the real release:
  simulated_rirs/{smallroom,mediumroom,largeroom}/RoomNNN/RoomNNN-NNNNN.wav   mono, and per room type a
      `rir_list` with lines `--rir-id small-Room001-00001 --room-id small-Room001 <path>`, the path being
      RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav
      (room sides 1-10 m, 10-30 m and 30-50 m like the real package; image method with pyroomacoustics);
  real_rirs_isotropic_noises/   the measured responses of the real release, reproduced in kind: RVB2014 responses of
      an 8-microphone circular array (8 channels), AIR binaural responses (`air_type1_air_binaural_*.wav`, 2 channels:
      the ears of a dummy head), an RWCP response (mono); and RVB2014 isotropic noises (8 channels), which are not
      RIRs. `rir_list` lists the responses, `noise_list` the noises
      (`--noise-id ID --noise-type isotropic --room-linkage ROOM-ID RIRS_NOISES/...wav`);
  pointsource_noises/   mono noises, listed in its `noise_list` (`--noise-type point-source`).
Paths in the lists are relative to the parent of RIRS_NOISES, as in the real release.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavlm.synth.common import SAMPLE_RATE, rng_for, write_audio, write_lines

logger = logging.getLogger(__name__)

ROOM_TYPES = {
    "smallroom": ("small", 1.0, 10.0),
    "mediumroom": ("medium", 10.0, 30.0),
    "largeroom": ("large", 30.0, 50.0),
}
REAL = "RIRS_NOISES/real_rirs_isotropic_noises"
POINT = "RIRS_NOISES/pointsource_noises"
# (file stem, room id, microphones, room side range in m): the kinds of measured responses of the real release
REAL_RIRS = (
    ("RVB2014_type1_rir_largeroom1_far_angla", "RVB2014_largeroom1", "circle8", (8.0, 12.0)),
    ("RVB2014_type1_rir_smallroom1_near_anglb", "RVB2014_smallroom1", "circle8", (3.0, 5.0)),
    ("air_type1_air_binaural_lecture_0_1", "air_lecture", "binaural", (8.0, 11.0)),
    ("air_type1_air_binaural_office_0_1", "air_office", "binaural", (3.0, 6.0)),
    ("RWCP_type2_rir_cirline_e2b_imp070", "RWCP_e2b", "mono", (4.0, 7.0)),
)
# (file stem, room id it belongs to): isotropic noises recorded with the RVB2014 array
ISO_NOISES = (("RVB2014_type1_noise_largeroom1_1", "RVB2014_largeroom1"),
              ("RVB2014_type1_noise_smallroom1_1", "RVB2014_smallroom1"))
POINT_NOISES = ("noise-free-sound-0001", "noise-free-sound-0002")


@dataclass
class RirsConfig:
    rooms_per_type: int = 2
    rirs_per_room: int = 3
    max_order: int = 10  # cap on image-method reflections (speed)
    max_seconds: float = 1.0  # RIR length cap
    real: bool = True  # also real_rirs_isotropic_noises/ and pointsource_noises/ (multi-channel, AIR, noises)


def microphones(kind: str, centre: np.ndarray) -> np.ndarray:
    """[3, M] microphone positions: an 8-microphone circle of radius 10 cm (RVB2014), two ears 17 cm apart (AIR
    binaural), or one microphone."""
    if kind == "circle8":
        a = np.arange(8) * 2 * np.pi / 8
        offsets = np.stack([0.1 * np.cos(a), 0.1 * np.sin(a), np.zeros(8)])
    elif kind == "binaural":
        offsets = np.array([[-0.085, 0.085], [0.0, 0.0], [0.0, 0.0]])
    else:
        offsets = np.zeros((3, 1))
    return centre[:, None] + offsets


def simulate(rng: np.random.Generator, low: float, high: float, n: int, cfg: RirsConfig,
             mics: str = "mono") -> list[np.ndarray]:
    """`n` responses of one random shoebox room (one source position each), each [S] (mono) or [S, M], peak 0.9."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(low, high), rng.uniform(low, high), rng.uniform(2.0, 5.0)])
    rt60 = float(rng.uniform(0.2, 0.9))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # rt60 impossible for this room: take a mid absorption
        absorption, max_order = 0.3, cfg.max_order
    order = int(min(max_order, cfg.max_order if low < 10 else cfg.max_order // 2))
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order)
    centre = np.array([rng.uniform(0.5, d - 0.5) for d in dims[:2]] + [rng.uniform(0.5, min(2.0, dims[2] - 0.3))])
    room.add_microphone_array(microphones(mics, centre))
    for _ in range(n):
        room.add_source([rng.uniform(0.3, d - 0.3) for d in dims[:2]] + [rng.uniform(0.3, dims[2] - 0.3)])
    room.compute_rir()
    limit = int(cfg.max_seconds * SAMPLE_RATE)
    out = []
    for s in range(n):
        chans = [np.asarray(room.rir[m][s]) for m in range(len(room.rir))]
        h = np.zeros((min(limit, max(len(c) for c in chans)), len(chans)))
        for m, c in enumerate(chans):
            c = c[:limit]
            h[: len(c), m] = c
        h = h / np.max(np.abs(h)) * 0.9
        out.append(h[:, 0] if mics == "mono" else h)
    return out


def generate(out: Path, cfg: RirsConfig, seed: int) -> None:
    base = out / "RIRS_NOISES" / "simulated_rirs"
    for rtype, (prefix, low, high) in ROOM_TYPES.items():
        lines = []
        for r in range(1, cfg.rooms_per_type + 1):
            rirs = simulate(rng_for(seed, "rirs", rtype, r), low, high, cfg.rirs_per_room, cfg)
            for k, h in enumerate(rirs, 1):
                rel = f"RIRS_NOISES/simulated_rirs/{rtype}/Room{r:03d}/Room{r:03d}-{k:05d}.wav"
                write_audio(out / rel, h)
                lines.append(f"--rir-id {prefix}-Room{r:03d}-{k:05d} --room-id {prefix}-Room{r:03d} {rel}")
        write_lines(base / rtype / "rir_list", lines)
        logger.info("RIRs: %s, %d rooms x %d", rtype, cfg.rooms_per_type, cfg.rirs_per_room)
    if cfg.real:
        generate_real(out, cfg, seed)


def generate_real(out: Path, cfg: RirsConfig, seed: int) -> None:
    """real_rirs_isotropic_noises/ (multi-channel and mono responses, isotropic noises) and pointsource_noises/."""
    rir_lines = []
    for stem, room, mics, (low, high) in REAL_RIRS:
        (h,) = simulate(rng_for(seed, "rirs", "real", stem), low, high, 1, cfg, mics)
        rel = f"{REAL}/{stem}.wav"
        write_audio(out / rel, h)
        rir_lines.append(f"--rir-id {stem} --room-id {room} {rel}")
    write_lines(out / REAL / "rir_list", rir_lines)
    noise_lines = []
    for stem, room in ISO_NOISES:
        rng = rng_for(seed, "rirs", "isotropic", stem)
        rel = f"{REAL}/{stem}.wav"
        write_audio(out / rel, 0.05 * rng.standard_normal((2 * SAMPLE_RATE, 8)))
        noise_lines.append(f"--noise-id {stem} --noise-type isotropic --room-linkage {room} {rel}")
    write_lines(out / REAL / "noise_list", noise_lines)
    point_lines = []
    for stem in POINT_NOISES:
        rng = rng_for(seed, "rirs", "pointsource", stem)
        rel = f"{POINT}/{stem}.wav"
        write_audio(out / rel, 0.1 * rng.standard_normal(SAMPLE_RATE))
        point_lines.append(f"--noise-id {stem} --noise-type point-source --bg-fg-type foreground {rel}")
    write_lines(out / POINT / "noise_list", point_lines)
    logger.info("RIRs: %d real responses (multi-channel, AIR), %d isotropic and %d point-source noises",
                len(REAL_RIRS), len(ISO_NOISES), len(POINT_NOISES))
