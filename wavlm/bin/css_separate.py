"""Continuous separation of LibriCSS sessions into two streams, as Kaldi data dirs the ASR decoder reads.

    python -m wavlm.bin.css_separate --model exp/css_wavlm/checkpoint_best.pt --data data/libricss_OV10 \\
        --out exp/css_wavlm/sep/libricss_OV10 [--history 0.8 --current 1.2 --future 0.4]
    python -m wavlm.bin.css_separate --model none --data data/libricss_OV10 --out exp/nosep/libricss_OV10

Each recording's first channel (the centre microphone) is cut into windows of history + current + future
seconds every `current` seconds; each window is separated independently, consecutive windows' outputs are
aligned by the permutation that matches best on the samples they share, and each window's current part is
written to one of two continuous streams (wavlm.models.separation.ContinuousSeparator). OUT/stream0 and
OUT/stream1 are data dirs with the input's segments, text and utt2spk over the separated recordings
(OUT/wav/<recording>-s<k>.wav); `--model none` writes the unprocessed first channel as stream0 only (the
no-separation row). `--mvdr`: the 7-channel variant, each window's masks (from the first channel) steer a
mask-based MVDR beamformer over all channels (wavlm.models.css.MaskSeparator.mvdr).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from wavlm.bin import setup_logging
from wavlm.data.audio import AudioError, check_audio, read_audio
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text, compute_utt2dur
from wavlm.features.shards import model_stamp
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.separation import ContinuousSeparator

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="separation checkpoint (wavlm.bin.train_css) or `none`")
    p.add_argument("--data", required=True, help="data dir of sessions (wav.scp, segments, text, utt2spk)")
    p.add_argument("--out", required=True)
    p.add_argument("--history", type=float, default=0.8)
    p.add_argument("--current", type=float, default=1.2)
    p.add_argument("--future", type=float, default=0.4)
    p.add_argument("--mvdr", action="store_true",
                   help="7-channel variant: masks from the first channel steer a mask-based MVDR on all channels")
    p.add_argument("--device", default="cpu")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        run(args)
    except (AudioError, DataDirError, CheckpointError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    data, out = DataDir(args.data), Path(args.out)
    if data.segments is None:
        raise DataDirError(f"{args.data}: no segments (the reference utterances of each session)")
    stamp = json.dumps({"model": str(Path(args.model).resolve()) if args.model != "none" else "none", "mvdr": args.mvdr,
                        "model_stamp": model_stamp(args.model) if args.model != "none" else [],
                        "data": str(data.path.resolve()), "windows": [args.history, args.current, args.future]},
                       sort_keys=True)
    if (out / ".done").is_file() and (out / ".done").read_text().strip() == stamp:
        logger.info("%s is up to date", out)
        return
    separator = None
    if args.model != "none":
        from wavlm.tasks.css import load_separator

        model = load_separator(args.model, args.device)
        if args.mvdr:
            def separate(w: torch.Tensor) -> torch.Tensor:
                return model.mvdr(w.to(args.device)).cpu()
        else:
            def separate(w: torch.Tensor) -> torch.Tensor:
                return model(w[None].to(args.device))[0, :2].cpu()
        separator = ContinuousSeparator(separate, args.history, args.current, args.future)
    streams = 1 if separator is None else 2
    (out / "wav").mkdir(parents=True, exist_ok=True)
    scp: list[list[str]] = [[] for _ in range(streams)]
    for reco in data.wav_scp.keys():
        wav, sr = read_audio(data.wav_scp[reco], what=data.wav_scp.where(reco))
        mono = check_audio(wav, sr, what=data.wav_scp.where(reco), channel=0 if wav.ndim == 2 else None,
                           min_samples=400)
        if args.mvdr and (wav.ndim != 2 or wav.shape[1] < 2):
            raise AudioError(f"{data.wav_scp.where(reco)}: --mvdr needs a multi-channel recording, this one has "
                             f"{1 if wav.ndim == 1 else wav.shape[1]} channel(s)")
        signal = np.ascontiguousarray(wav.T, dtype=np.float32) if args.mvdr else mono
        if separator is not None and len(mono) < separator.window_samples:
            logger.warning("%s: %.2f s is shorter than one window (%.2f s = history + current + future): "
                           "separated as one zero-padded window", data.wav_scp.where(reco), len(mono) / 16000,
                           separator.window_samples / 16000)
        outs = mono[None] if separator is None else separator(torch.from_numpy(signal)).numpy()
        peak = max(float(np.abs(outs).max()), 1e-9)
        for k in range(streams):
            path = out / "wav" / f"{reco}-s{k}.wav"
            tmp = path.with_name(f".{path.name}.tmp.wav")
            sf.write(tmp, (outs[k] / max(peak, 1.0)).astype(np.float32), 16000, subtype="FLOAT")
            tmp.replace(path)
            scp[k].append(f"{reco} {path.resolve()}\n")
        logger.info("%s: %.1f s -> %d stream(s)", reco, len(mono) / 16000, streams)
    for k in range(streams):
        d = out / f"stream{k}"
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "wav.scp", "".join(scp[k]))
        for name in ("segments", "text", "utt2spk", "spk2utt"):
            shutil.copyfile(data.path / name, d / name)
        compute_utt2dur(d)
    atomic_write_text(out / ".done", stamp + "\n")


if __name__ == "__main__":
    sys.exit(main())
