"""Kaldi log-mel filterbanks (kaldi-native-fbank): the input of the ECAPA-TDNN baseline."""
from __future__ import annotations

import numpy as np


def compute_fbank(wav: np.ndarray, num_bins: int = 80, sample_rate: int = 16000, cmn: bool = True) -> np.ndarray:
    """[T, num_bins] float32 log-mel energies, 25 ms windows every 10 ms, no dither; with `cmn`, the
    utterance mean is subtracted (as the ECAPA-TDNN recipes do)."""
    import kaldi_native_fbank as knf

    o = knf.FbankOptions()
    o.frame_opts.samp_freq = float(sample_rate)
    o.frame_opts.dither = 0.0
    o.mel_opts.num_bins = num_bins
    comp = knf.OnlineFbank(o)
    comp.accept_waveform(float(sample_rate), np.ascontiguousarray(wav, dtype=np.float32) * 32768.0)
    comp.input_finished()
    n = comp.num_frames_ready
    feats = np.asarray([comp.get_frame(i) for i in range(n)], dtype=np.float32).reshape(n, num_bins)
    if cmn and n:
        feats -= feats.mean(axis=0, keepdims=True)
    return feats
