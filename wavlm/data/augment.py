"""On-the-fly augmentation for speaker verification, as in Kaldi's VoxCeleb x-vector recipe and the
ECAPA-TDNN papers: reverberation with a room impulse response, or additive MUSAN noise (single noise
clips at 0-15 dB), music (5-15 dB) or babble (3-7 MUSAN speech recordings summed, 13-20 dB).

Every draw comes from the generator passed in, so a batch is a function of its seed (exact resume).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from wavlm.data.audio import read_utterance
from wavlm.data.datadir import DataDir
from wavlm.data.mixing import scale_to_snr


@dataclass
class AugmentConfig:
    prob: float = 0.6  # share of utterances augmented (the rest stay clean)
    # relative weights of the augmentation kinds (only kinds with data are drawn)
    kinds: dict = field(default_factory=lambda: {"reverb": 1.0, "noise": 1.0, "music": 1.0, "babble": 1.0})
    noise_snr: tuple[float, float] | list[float] = (0.0, 15.0)
    music_snr: tuple[float, float] | list[float] = (5.0, 15.0)
    babble_snr: tuple[float, float] | list[float] = (13.0, 20.0)
    babble_speakers: tuple[int, int] | list[int] = (3, 7)
    # data dirs (wav.scp of 16 kHz recordings); empty: that kind is not used
    noise_data: str = ""  # MUSAN noise
    music_data: str = ""  # MUSAN music
    speech_data: str = ""  # MUSAN speech (babble)
    rir_data: str = ""  # room impulse responses, mono (data/rirs of `prepare_data rirs`: RIRS_NOISES' rir_lists)


@dataclass
class AugmentInfo:
    kind: str = "none"
    snr: float = float("nan")  # drawn SNR in dB (additive kinds)
    sources: list[str] = field(default_factory=list)


class Augmenter:
    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.dirs: dict[str, DataDir] = {}
        self.ids: dict[str, list[str]] = {}
        for kind, path in (("noise", cfg.noise_data), ("music", cfg.music_data), ("babble", cfg.speech_data),
                           ("reverb", cfg.rir_data)):
            if path and cfg.kinds.get(kind, 0) > 0:
                d = DataDir(path)
                ids = d.utt_ids()
                if not ids:
                    raise ValueError(f"{path}: no recordings for {kind} augmentation")
                self.dirs[kind], self.ids[kind] = d, ids
        self.kinds = sorted(self.dirs)
        w = np.array([float(cfg.kinds[k]) for k in self.kinds])
        self.weights = w / w.sum() if len(w) else w

    def _load(self, kind: str, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        utt = self.ids[kind][int(rng.integers(len(self.ids[kind])))]
        return utt, read_utterance(self.dirs[kind], utt)

    def _fit(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """A random n-sample window of x, tiled when x is shorter."""
        if len(x) < n:
            x = np.tile(x, n // len(x) + 1)
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start:start + n]

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, AugmentInfo]:
        if not self.kinds or rng.random() >= self.cfg.prob:
            return wav, AugmentInfo()
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.weights))]
        if kind == "reverb":
            utt, rir = self._load(kind, rng)
            return reverberate(wav, rir), AugmentInfo("reverb", sources=[utt])
        lo, hi = {"noise": self.cfg.noise_snr, "music": self.cfg.music_snr, "babble": self.cfg.babble_snr}[kind]
        snr = float(rng.uniform(lo, hi))
        n = len(wav)
        if kind == "babble":
            k = int(rng.integers(self.cfg.babble_speakers[0], self.cfg.babble_speakers[1] + 1))
            picks = [self._load(kind, rng) for _ in range(k)]
            interference = np.sum([self._fit(x, n, rng) for _, x in picks], axis=0)
            sources = [u for u, _ in picks]
        else:
            utt, x = self._load(kind, rng)
            interference, sources = self._fit(x, n, rng), [utt]
        out = wav + scale_to_snr(wav, interference, snr)
        return out.astype(np.float32), AugmentInfo(kind, snr, sources)


def reverberate(wav: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a unit-energy RIR aligned at its direct path (the peak), keeping the length."""
    rir = rir.astype(np.float64)
    peak = int(np.argmax(np.abs(rir)))
    rir = rir[peak:] / max(np.sqrt(np.sum(rir ** 2)), 1e-12)
    out = scipy.signal.fftconvolve(wav.astype(np.float64), rir)[: len(wav)]
    return out.astype(np.float32)
