"""Dump WavLM hidden states of a Kaldi data dir as kaldiio ark/scp (for k-means, SUPERB-style probing).

    python -m wavlm.bin.dump_features --model CKPT --layer 6 --data data/train --out dump/l6/train \\
        --nj 8 --job 3                                                      # one job (as $cmd JOB=1:8 runs)
    python -m wavlm.bin.dump_features ... --nj 8 --merge                    # merge the jobs' scp files
    python -m wavlm.bin.dump_features ... --nj 8                            # all jobs in-process, then merge

CKPT: a released WavLM .pt, a Hugging Face directory or one of our checkpoints. --layer: N (0 = encoder
input, 1..L = layer outputs, as hidden_states), `last`, or `all` (keys `utt@N`; see
wavlm/features/dump.py for the layout). Job K writes OUT/feats.K.{ark,scp,utt2num_frames} and
OUT/feats.K.done; a finished job is skipped when rerun with the same data and options. Long recordings
are processed in overlapping windows (--chunk_seconds, --chunk_overlap_seconds).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path

from wavlm.bin import run_main
from wavlm.data.audio import AudioError
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.features.dump import DumpOptions, FeatureDumper, default_device, frames_per_second, parse_layer
from wavlm.features.shards import (
    ShardError,
    Shards,
    add_shard_args,
    ark_scp_writer,
    model_stamp,
    write_feature_info,
)
from wavlm.models.checkpoint import CheckpointError, load_model

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavlm.bin.dump_features",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="checkpoint: released .pt, Hugging Face dir, or ours")
    p.add_argument("--layer", default="last", help="hidden state index N (0..L), 'last' or 'all'")
    p.add_argument("--data", required=True, help="Kaldi data dir (wav.scp, optional segments)")
    p.add_argument("--out", required=True, help="output dir for feats.*.ark/scp")
    add_shard_args(p)
    p.add_argument(
        "--batch_seconds", type=float, default=60.0, help="audio per padded batch (padding included)"
    )
    p.add_argument(
        "--chunk_seconds",
        type=float,
        default=30.0,
        help="recordings longer than this (+ 2 x overlap) go in windows of this core length; 0: never",
    )
    p.add_argument(
        "--chunk_overlap_seconds", type=float, default=5.0, help="context each side of a window core"
    )
    p.add_argument(
        "--channel", type=int, default=None, help="channel to use for multi-channel audio (0-based)"
    )
    p.add_argument(
        "--resample", action="store_true", help="resample audio that is not 16 kHz (sox) instead of failing"
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--num_threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument(
        "--weights_only",
        default=True,
        action=argparse.BooleanOptionalAction,
        help="torch.load(weights_only=True) for .pt files (default)",
    )
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (AudioError, DataDirError, CheckpointError, ShardError,
                                                         ValueError))


def run(args: argparse.Namespace) -> None:
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise DataDirError(f"{args.data}: no utterances")
    opts = DumpOptions(
        layer=args.layer,
        batch_seconds=args.batch_seconds,
        chunk_seconds=args.chunk_seconds,
        overlap_seconds=args.chunk_overlap_seconds,
        channel=args.channel,
        resample=args.resample,
    )
    config = {
        "kind": "wavlm",
        "model": str(Path(args.model).resolve()),
        "model_stamp": model_stamp(args.model),
        "layer": str(args.layer),
        "chunk_seconds": opts.chunk_seconds,
        "overlap_seconds": opts.overlap_seconds,
        "channel": opts.channel,
        "resample": opts.resample,
    }
    shards = Shards(args.out, "feats", args.nj, config)
    state: dict[str, FeatureDumper] = {}

    def dumper() -> FeatureDumper:
        if "d" not in state:
            model = load_model(args.model, weights_only=args.weights_only)
            parse_layer(args.layer, model.num_layers)  # validate before any work
            state["d"] = FeatureDumper(model, opts, args.device or default_device())
        return state["d"]

    def process(part: list[str], job: int) -> dict:
        d = dumper()
        ark, scp = shards.path(job, "ark"), shards.path(job, "scp")
        lens: list[str] = []

        def items():
            for utt, wav, sr in data.iter_audio(part):
                yield utt, d.prepare(wav, sr, data.describe(utt))

        with ark_scp_writer(ark, scp) as put:
            for utt, feats in d.run(items(), total=len(part), desc=f"wavlm job {job}"):
                for key, f in zip(d.keys(utt), feats, strict=True):
                    put(key, f)
                lens.append(f"{utt} {feats[0].shape[0]}\n")
        atomic_write_text(shards.path(job, "utt2num_frames"), "".join(lens))
        return {"num_utts": len(part), "num_frames": sum(int(x.split()[1]) for x in lens)}

    def merge() -> None:
        model_layers = None
        if args.layer == "all":
            # keys utt@N: the merged scp, plus one ordinary feature dir per layer
            all_scp = shards.merge_text("scp", "feats.scp")
            per_layer: dict[str, list[str]] = defaultdict(list)
            with open(all_scp, encoding="utf-8") as f:
                for line in f:
                    key, spec = line.rstrip("\n").split(" ", 1)
                    utt, _, lay = key.rpartition("@")
                    per_layer[lay].append(f"{utt} {spec}\n")
            model_layers = sorted(per_layer, key=int)
            for lay in model_layers:
                lines = sorted(per_layer[lay], key=lambda s: s.split(" ", 1)[0].encode())
                atomic_write_text(Path(args.out) / f"layer{lay}" / "feats.scp", "".join(lines))
        else:
            shards.merge_text("scp", "feats.scp", expect=utts)
        shards.merge_text("utt2num_frames", "utt2num_frames", expect=utts)
        d = dumper()
        info = {
            "kind": "wavlm",
            "dim": d.model.embed_dim,
            "frame_rate": frames_per_second(d.model),
            "layer": str(args.layer),
            "layers": d.layers,
            "model": str(args.model),
            "data": str(args.data),
            "chunk_seconds": opts.chunk_seconds,
            "overlap_seconds": opts.overlap_seconds,
            "keys": "utt@layer" if model_layers else "utt",
        }
        write_feature_info(args.out, info)
        if model_layers:
            for lay in model_layers:
                write_feature_info(
                    Path(args.out) / f"layer{lay}",
                    {**info, "layer": lay, "layers": [int(lay)], "keys": "utt"},
                )

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
