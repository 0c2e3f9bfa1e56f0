"""Dumping WavLM hidden states of a Kaldi data dir (the logic behind `wavlm.bin.dump_features`).

Output layout (OUT = --out):
  * one layer (`--layer N` or `last`): `OUT/feats.K.ark/.scp` keyed by utterance, [T, D] float32;
    the merge writes `OUT/feats.scp`, `OUT/utt2num_frames`, `OUT/feats_info.json`.
  * `--layer all`: the same arks hold one matrix per layer, keyed `utt@L` (L = 0 .. num_layers, as
    `hidden_states`); the merge writes `OUT/feats.scp` with all keys and, for convenience, one ordinary
    feature dir per layer `OUT/layerL/feats.scp` (keyed by utterance, pointing into the same arks).

Batching: utterances are read in data-dir order, pooled, sorted by length and cut into padded batches
of at most `batch_seconds` of audio (padding included). Padded batches give the same frames as one
utterance at a time up to float rounding, except for the first GroupNorm of the "default" (Base)
extractor, which takes its statistics over the padded length exactly as the released code does (a
few per cent of padding changes its output by about as much); for such models only utterances of
identical length are batched (`max_pad_ratio` 1.0), so every utterance's features are what it gives
alone.

Long recordings (longer than `chunk_seconds` + 2 x `overlap_seconds`) are processed in windows: the
frames [c0, c1) of each `chunk_seconds` core are computed from a window with `overlap_seconds` of audio
either side (cut at frame boundaries, so frame t sees exactly samples [320 t, 320 t + 400)), and only
the core frames are kept. Memory is then bounded by the window, for any length. What needs the whole
recording is taken from the whole recording: the waveform normalisation (Large) and the first
GroupNorm's per-channel statistics (Base; in closed form from the samples, see `FeatureExtractor.first_norm_stats`).

Deviation from full-context output, measured with a randomly initialised Base-size model
(conf/model/base.yaml, seed 0) on 95 s of a speech-like synthetic signal, 30 s cores, 5 s overlap:
relative RMS difference ||chunked - full|| / ||full|| of 2e-6 at hidden state 0 (CNN + positional
conv: exact up to float rounding), 1.2e-2 after layer 1, growing to 3.2e-2 at layer 12 (max abs
difference 0.4); frames more than 2 s from a window edge differ almost as much
(2.9e-2 at layer 12), because randomly initialised attention spreads over the whole input, so what a
window cannot see matters everywhere. Trained models attend far more locally and should deviate less,
but we could not measure released weights here (no network). Longer `chunk_seconds` reduce it;
`chunk_seconds` 0 disables chunking. tests/test_dump_features.py checks a small model (< 5e-2).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from wavlm.data.audio import SAMPLE_RATE, AudioError, check_audio, resample
from wavlm.models.wavlm import WavLM, conv_output_lengths

logger = logging.getLogger(__name__)


def parse_layer(spec: str | int, num_layers: int) -> list[int]:
    """`N` (0 = encoder input .. num_layers), `last` or `all` -> list of hidden-state indices."""
    if isinstance(spec, int) or str(spec).lstrip("-").isdigit():
        n = int(spec)
        if n < 0:
            n += num_layers + 1
        if not 0 <= n <= num_layers:
            raise ValueError(f"layer {spec} is outside 0..{num_layers} (0 is the encoder input)")
        return [n]
    if spec == "last":
        return [num_layers]
    if spec == "all":
        return list(range(num_layers + 1))
    raise ValueError(f"layer must be an integer, 'last' or 'all', got {spec!r}")


@dataclass
class DumpOptions:
    layer: str = "last"
    batch_seconds: float = 60.0
    chunk_seconds: float = 30.0
    overlap_seconds: float = 5.0
    max_pad_ratio: float = 1.0  # Base ("default" extractor): batch only lengths within this ratio
    channel: int | None = None
    resample: bool = False


def prepare_audio(wav: np.ndarray, sr: int, what: str, opts: DumpOptions, min_samples: int) -> np.ndarray:
    """`FeatureDumper.prepare` without the model (`min_samples`: its receptive field), so that it can run
    in a data-loading worker process."""
    if sr != SAMPLE_RATE and opts.resample:
        x = check_audio(wav, sr, what=what, sample_rate=sr, channel=opts.channel)
        x = resample(x, sr, SAMPLE_RATE)
        sr = SAMPLE_RATE
    else:
        x = wav
    try:
        return check_audio(x, sr, what=what, channel=opts.channel, min_samples=min_samples)
    except AudioError as e:
        if sr != SAMPLE_RATE:
            raise AudioError(f"{e}; or pass --resample") from None
        raise


class FeatureDumper:
    """Hidden states of one model for a stream of utterances, batched by length."""

    def __init__(self, model: WavLM, opts: DumpOptions, device: str | torch.device = "cpu"):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.opts = opts
        self.layers = parse_layer(opts.layer, model.num_layers)
        top = max(self.layers)
        self.num_layers = None if top == model.num_layers else top
        self.shift = model.frame_shift
        self.rf = model.receptive_field

    # --- keys -------------------------------------------------------------------------------------
    def keys(self, utt: str) -> list[str]:
        return [utt] if len(self.layers) == 1 else [f"{utt}@{lay}" for lay in self.layers]

    # --- input ------------------------------------------------------------------------------------
    def prepare(self, wav: np.ndarray, sr: int, what: str) -> np.ndarray:
        """Checks (and optional resampling) of one utterance's audio; mono float32 [S] at 16 kHz."""
        return prepare_audio(wav, sr, what, self.opts, self.rf)

    # --- compute ----------------------------------------------------------------------------------
    def _run(
        self, wav: Tensor, lengths: Tensor | None, normalize: bool | None = None
    ) -> tuple[list[Tensor], Tensor]:
        out = self.model.extract_features(wav, lengths, num_layers=self.num_layers, normalize=normalize)
        return [out.hidden_states[i] for i in self.layers], out.lengths

    @torch.inference_mode()
    def batch(self, wavs: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Padded batch -> per utterance, per layer [T, D] float32."""
        lens = torch.tensor([len(w) for w in wavs], dtype=torch.long)
        x = torch.zeros(len(wavs), int(lens.max()), dtype=torch.float32)
        for i, w in enumerate(wavs):
            x[i, : len(w)] = torch.tensor(w)
        states, frames = self._run(x.to(self.device), lens.to(self.device) if len(wavs) > 1 else None)
        res = []
        for i in range(len(wavs)):
            n = int(frames[i])
            res.append([h[i, :n].float().cpu().numpy() for h in states])
        return res

    @torch.inference_mode()
    def long(self, wav: np.ndarray) -> list[np.ndarray]:
        """One long utterance in overlapping windows (see the module docstring)."""
        return [
            t.float().cpu().numpy()
            for t in extract_chunked(
                self.model,
                torch.tensor(wav).to(self.device),
                self.layers,
                self.opts.chunk_seconds,
                self.opts.overlap_seconds,
                num_layers=self.num_layers,
            )
        ]

    def is_long(self, n_samples: int) -> bool:
        c = self.opts.chunk_seconds
        return c > 0 and n_samples > (c + 2 * self.opts.overlap_seconds) * SAMPLE_RATE

    def plan(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into batches: sorted by length, padded size <= batch_seconds."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        cap = self.opts.batch_seconds * SAMPLE_RATE
        strict = self.model.cfg.extractor_mode == "default"
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            if cur:
                longest = lengths[cur[0]]
                too_big = (len(cur) + 1) * longest > cap
                too_uneven = strict and longest > self.opts.max_pad_ratio * lengths[i]
                if too_big or too_uneven:
                    batches.append(cur)
                    cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def run(
        self, items: Iterable[tuple[str, np.ndarray]], total: int | None = None, desc: str = "wavlm"
    ) -> Iterator[tuple[str, list[np.ndarray]]]:
        """(utt, checked audio) -> (utt, per-layer features), in batches; order within a pool changes."""
        pool: list[tuple[str, np.ndarray]] = []
        pool_cap = 4 * self.opts.batch_seconds * SAMPLE_RATE
        bar = tqdm(total=total, desc=desc, unit="utt", mininterval=10)

        def flush() -> Iterator[tuple[str, list[np.ndarray]]]:
            for idx in self.plan([len(w) for _, w in pool]):
                feats = self.batch([pool[i][1] for i in idx])
                for i, f in zip(idx, feats, strict=True):
                    yield pool[i][0], f
                bar.update(len(idx))
            pool.clear()

        try:
            for utt, wav in items:
                if self.is_long(len(wav)):
                    yield utt, self.long(wav)
                    bar.update(1)
                    continue
                pool.append((utt, wav))
                if sum(len(w) for _, w in pool) >= pool_cap:
                    yield from flush()
            yield from flush()
        finally:
            bar.close()


def extract_chunked(
    model: WavLM,
    wav: Tensor,
    layers: list[int],
    chunk_seconds: float,
    overlap_seconds: float,
    num_layers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Tensor]:
    """Hidden states [T, D] (one per entry of `layers`) of a long mono waveform [S], in windows."""
    shift, rf = model.frame_shift, model.receptive_field
    fps = SAMPLE_RATE / shift
    core = max(1, int(round(chunk_seconds * fps)))
    ctx = max(0, int(round(overlap_seconds * fps)))
    n = wav.shape[-1]
    total = int(conv_output_lengths(torch.tensor([n]), model.conv_spec)[0])
    if total < 1:
        raise ValueError(f"waveform of {n} samples is shorter than the receptive field ({rf})")
    normalize = None
    if model.cfg.normalize:  # over the whole recording, not per window
        wav = model.normalize_waveform(wav[None], None)[0]
        normalize = False
    stats = model.feature_extractor.first_norm_stats(wav)  # GroupNorm over the recording, too
    outs: list[Tensor] | None = None
    for c0 in range(0, total, core):
        c1 = min(total, c0 + core)
        w0, w1 = max(0, c0 - ctx), min(total, c1 + ctx)
        s0, s1 = w0 * shift, min(n, (w1 - 1) * shift + rf)
        out = model.extract_features(
            wav[None, s0:s1], num_layers=num_layers, normalize=normalize, norm_stats=stats
        )
        if outs is None:
            d = out.hidden_states[0].shape[-1]
            outs = [
                torch.empty(total, d, dtype=out.hidden_states[0].dtype, device=wav.device) for _ in layers
            ]
        for o, lay in zip(outs, layers, strict=True):
            o[c0:c1] = out.hidden_states[lay][0, c0 - w0 : c1 - w0]
        if progress is not None:
            progress(c1 - c0)
    assert outs is not None
    return outs


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def frames_per_second(model: WavLM) -> float:
    return SAMPLE_RATE / model.frame_shift


def num_windows(n_samples: int, chunk_seconds: float) -> int:
    return max(1, math.ceil(n_samples / (chunk_seconds * SAMPLE_RATE)))
