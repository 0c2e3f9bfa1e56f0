"""Simulated room impulse responses in the layout of openslr 28 (RIRS_NOISES/simulated_rirs).

Layout under OUT: RIRS_NOISES/simulated_rirs/{smallroom,mediumroom,largeroom}/RoomNNN/RoomNNN-NNNNN.wav
and a `rir_list` per room type with lines
  --rir-id small-Room001-00001 --room-id small-Room001 \
      RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav   (on one line)
(room sides 1-10 m, 10-30 m and 30-50 m like the real package; image method with pyroomacoustics).
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


@dataclass
class RirsConfig:
    rooms_per_type: int = 2
    rirs_per_room: int = 3
    max_order: int = 10  # cap on image-method reflections (speed)
    max_seconds: float = 1.0  # RIR length cap


def simulate_room(
    rng: np.random.Generator, low: float, high: float, n: int, cfg: RirsConfig
) -> list[np.ndarray]:
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(low, high), rng.uniform(low, high), rng.uniform(2.0, 5.0)])
    rt60 = float(rng.uniform(0.2, 0.9))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # rt60 impossible for this room: take a mid absorption
        absorption, max_order = 0.3, cfg.max_order
    order = int(min(max_order, cfg.max_order if low < 10 else cfg.max_order // 2))
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=order)
    mic = np.array(
        [rng.uniform(0.5, d - 0.5) for d in dims[:2]] + [rng.uniform(0.5, min(2.0, dims[2] - 0.3))]
    )
    room.add_microphone(mic)
    for _ in range(n):
        room.add_source([rng.uniform(0.3, d - 0.3) for d in dims[:2]] + [rng.uniform(0.3, dims[2] - 0.3)])
    room.compute_rir()
    limit = int(cfg.max_seconds * SAMPLE_RATE)
    out = []
    for s in range(n):
        r = np.asarray(room.rir[0][s])[:limit]
        out.append(r / np.max(np.abs(r)) * 0.9)
    return out


def generate(out: Path, cfg: RirsConfig, seed: int) -> None:
    base = out / "RIRS_NOISES" / "simulated_rirs"
    for rtype, (prefix, low, high) in ROOM_TYPES.items():
        lines = []
        for r in range(1, cfg.rooms_per_type + 1):
            rirs = simulate_room(rng_for(seed, "rirs", rtype, r), low, high, cfg.rirs_per_room, cfg)
            for k, h in enumerate(rirs, 1):
                rel = f"RIRS_NOISES/simulated_rirs/{rtype}/Room{r:03d}/Room{r:03d}-{k:05d}.wav"
                write_audio(out / rel, h)
                lines.append(f"--rir-id {prefix}-Room{r:03d}-{k:05d} --room-id {prefix}-Room{r:03d} {rel}")
        write_lines(base / rtype / "rir_list", lines)
        logger.info("RIRs: %s, %d rooms x %d", rtype, cfg.rooms_per_type, cfg.rirs_per_room)
