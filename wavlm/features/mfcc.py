"""Kaldi-exact MFCC + deltas + delta-deltas (39 dims, 100 frames/s), HuBERT's first-iteration features.

The MFCC itself is computed by kaldi-native-fbank (a C++ port of Kaldi's `compute-mfcc-feats`), with the
options HuBERT's `simple_kmeans/dump_mfcc_feature.py` uses through `torchaudio.compliance.kaldi.mfcc`:
13 cepstra, `use_energy=false`, 23 mel bins from 20 Hz to Nyquist, 25 ms Povey windows every 10 ms with
`snip_edges`, pre-emphasis 0.97, DC removal, cepstral lifter 22 and no dither (so output is deterministic).
Like HuBERT, the waveform is taken as float samples in [-1, 1]; Kaldi's own tools see int16-scaled samples
(`scale=32768`), which shifts only c0 by a constant (irrelevant to k-means distances).

Deltas follow Kaldi's `add-deltas` (window 2): order-i features are the i-fold convolution of the
regression window applied to the static features with edge frames replicated. HuBERT applies
torchaudio's `compute_deltas` twice instead; the two agree except on the first/last 2 frames of the
delta-deltas (`delta_style="torchaudio"` reproduces HuBERT's exactly).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = 16000
    num_ceps: int = 13
    num_mel_bins: int = 23
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist, as in Kaldi
    preemph_coeff: float = 0.97
    cepstral_lifter: float = 22.0
    dither: float = 0.0
    remove_dc_offset: bool = True
    window_type: str = "povey"
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    use_energy: bool = False
    scale: float = 1.0  # multiply the waveform first (32768 = Kaldi's int16 convention)
    delta_order: int = 2
    delta_window: int = 2
    delta_style: str = "kaldi"  # "kaldi" (add-deltas) or "torchaudio" (compute_deltas applied twice, as HuBERT)

    def __post_init__(self) -> None:
        if self.delta_style not in ("kaldi", "torchaudio"):
            raise ValueError(f"delta_style must be 'kaldi' or 'torchaudio', got {self.delta_style!r}")
        if self.delta_order < 0 or self.delta_window < 1:
            raise ValueError(f"bad delta options: order {self.delta_order}, window {self.delta_window}")

    @property
    def dim(self) -> int:
        return self.num_ceps * (self.delta_order + 1)

    @property
    def frame_rate(self) -> float:
        return 1000.0 / self.frame_shift_ms

    @property
    def window_samples(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def shift_samples(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    def to_dict(self) -> dict:
        return asdict(self)

    def knf_options(self):  # -> kaldi_native_fbank.MfccOptions
        import kaldi_native_fbank as knf

        o = knf.MfccOptions()
        fo = o.frame_opts
        fo.samp_freq = float(self.sample_rate)
        fo.frame_length_ms = self.frame_length_ms
        fo.frame_shift_ms = self.frame_shift_ms
        fo.dither = self.dither
        fo.preemph_coeff = self.preemph_coeff
        fo.remove_dc_offset = self.remove_dc_offset
        fo.window_type = self.window_type
        fo.round_to_power_of_two = self.round_to_power_of_two
        fo.snip_edges = self.snip_edges
        mo = o.mel_opts
        mo.num_bins = self.num_mel_bins
        mo.low_freq = self.low_freq
        mo.high_freq = self.high_freq
        o.num_ceps = self.num_ceps
        o.use_energy = self.use_energy
        o.cepstral_lifter = self.cepstral_lifter
        return o


def num_frames(num_samples: int, cfg: MfccConfig = MfccConfig()) -> int:
    """Frames Kaldi produces for `num_samples` samples (snip_edges: whole windows only)."""
    win, shift = cfg.window_samples, cfg.shift_samples
    if cfg.snip_edges:
        return 0 if num_samples < win else 1 + (num_samples - win) // shift
    return (num_samples + shift // 2) // shift


def compute_mfcc(wav: np.ndarray, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """Static MFCC [T, num_ceps] (float32) of a mono waveform at `cfg.sample_rate`."""
    import kaldi_native_fbank as knf

    if wav.ndim != 1:
        raise ValueError(f"expected a mono waveform [S], got shape {wav.shape}")
    x = np.ascontiguousarray(wav, dtype=np.float32)
    if cfg.scale != 1.0:
        x = x * np.float32(cfg.scale)
    comp = knf.OnlineMfcc(cfg.knf_options())
    comp.accept_waveform(float(cfg.sample_rate), x)
    comp.input_finished()
    n = comp.num_frames_ready
    if n == 0:
        return np.zeros((0, cfg.num_ceps), dtype=np.float32)
    return np.asarray([comp.get_frame(i) for i in range(n)], dtype=np.float32)


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2, style: str = "kaldi") -> np.ndarray:
    """[T, D] -> [T, D * (order + 1)]: statics, then deltas of increasing order (edges replicated)."""
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if order == 0 or feats.shape[0] == 0:
        return np.zeros((feats.shape[0], feats.shape[1] * (order + 1)), dtype=np.float32)
    if style == "kaldi":
        import kaldi_native_fbank as knf

        opts = knf.DeltaOptions()
        opts.order, opts.window = order, window
        return np.asarray(knf.compute_deltas(opts, feats), dtype=np.float32)
    if style == "torchaudio":
        blocks = [feats]
        for _ in range(order):
            blocks.append(_regression_delta(blocks[-1], window))
        return np.concatenate(blocks, axis=1).astype(np.float32)
    raise ValueError(f"unknown delta style {style!r}")


def _regression_delta(x: np.ndarray, window: int) -> np.ndarray:
    """One delta pass: sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2), edge frames replicated."""
    t = x.shape[0]
    xp = np.pad(x.astype(np.float64), ((window, window), (0, 0)), mode="edge")
    out = np.zeros(x.shape, dtype=np.float64)
    for n in range(1, window + 1):
        out += n * (xp[window + n : window + n + t] - xp[window - n : window - n + t])
    return out / (2 * sum(n * n for n in range(1, window + 1)))


def mfcc_with_deltas(wav: np.ndarray, cfg: MfccConfig = MfccConfig()) -> np.ndarray:
    """MFCC + deltas [T, cfg.dim] float32 (39 dims with the defaults)."""
    static = compute_mfcc(wav, cfg)
    return add_deltas(static, cfg.delta_order, cfg.delta_window, cfg.delta_style)
