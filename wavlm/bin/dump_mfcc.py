"""Dump MFCC + deltas + delta-deltas (39 dims, 100 frames/s) of a Kaldi data dir as kaldiio ark/scp.

    python -m wavlm.bin.dump_mfcc --data data/train --out dump/mfcc/train --nj 8 --job 3   # one job
    python -m wavlm.bin.dump_mfcc --data data/train --out dump/mfcc/train --nj 8 --merge   # merge jobs
    python -m wavlm.bin.dump_mfcc --data data/train --out dump/mfcc/train --nj 8           # all, then merge

Job K writes OUT/feats.K.{ark,scp,utt2num_frames} and OUT/feats.K.done; a finished job is skipped when
rerun with the same data and options. The merge writes OUT/feats.scp, OUT/utt2num_frames (sorted) and
OUT/feats_info.json (dim, frame_rate, options).
"""
from __future__ import annotations

import argparse
import logging

from tqdm import tqdm

from wavlm.bin import setup_logging
from wavlm.data.audio import check_audio
from wavlm.data.datadir import DataDir, atomic_write_text
from wavlm.features.mfcc import MfccConfig, mfcc_with_deltas
from wavlm.features.shards import Shards, add_shard_args, ark_scp_writer, write_feature_info

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="Kaldi data dir (wav.scp, optional segments)")
    p.add_argument("--out", required=True, help="output dir for feats.*.ark/scp")
    add_shard_args(p)
    p.add_argument("--sample_rate", type=int, default=16000, help="expected sample rate of the audio")
    p.add_argument("--channel", type=int, default=None, help="channel to use for multi-channel audio")
    p.add_argument("--delta_style", choices=("kaldi", "torchaudio"), default="kaldi",
                   help="kaldi: add-deltas; torchaudio: compute_deltas twice, as HuBERT's dump_mfcc_feature.py")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply samples by this first (1: [-1, 1] floats as HuBERT; 32768: as Kaldi's tools)")
    p.add_argument("--num_ceps", type=int, default=13)
    p.add_argument("--num_mel_bins", type=int, default=23)
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    cfg = MfccConfig(sample_rate=args.sample_rate, num_ceps=args.num_ceps, num_mel_bins=args.num_mel_bins,
                     delta_style=args.delta_style, scale=args.scale)
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise SystemExit(f"{args.data}: no utterances")
    config = {"kind": "mfcc", "mfcc": cfg.to_dict(), "channel": args.channel}
    shards = Shards(args.out, "feats", args.nj, config)

    def process(part: list[str], job: int) -> dict:
        ark, scp = shards.path(job, "ark"), shards.path(job, "scp")
        lens = []
        with ark_scp_writer(ark, scp) as put:
            for utt, wav, sr in tqdm(data.iter_audio(part), total=len(part), desc=f"mfcc job {job}",
                                     mininterval=10):
                x = check_audio(wav, sr, what=data.describe(utt), sample_rate=cfg.sample_rate,
                                channel=args.channel, min_samples=cfg.window_samples)
                feats = mfcc_with_deltas(x, cfg)
                put(utt, feats)
                lens.append(f"{utt} {feats.shape[0]}\n")
        atomic_write_text(shards.path(job, "utt2num_frames"), "".join(lens))
        return {"num_utts": len(part), "num_frames": sum(int(x.split()[1]) for x in lens)}

    def merge() -> None:
        shards.merge_text("scp", "feats.scp", expect=utts)
        shards.merge_text("utt2num_frames", "utt2num_frames", expect=utts)
        write_feature_info(args.out, {"kind": "mfcc", "dim": cfg.dim, "frame_rate": cfg.frame_rate,
                                      "sample_rate": cfg.sample_rate, "data": str(args.data),
                                      "config": cfg.to_dict()})

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    main()
