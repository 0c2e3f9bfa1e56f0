"""Apply a k-means model to a feats.scp in parallel jobs and write frame labels `utt l1 l2 ...`.

    python -m wavlm.bin.dump_km_label --feats dump/mfcc/train --km exp/km_mfcc100 --out dump/km100/train \\
        --nj 8 --job 3                                                               # one job
    python -m wavlm.bin.dump_km_label ... --nj 8 --merge                             # merge jobs
    python -m wavlm.bin.dump_km_label ... --nj 8                                     # all, then merge

Job K writes OUT/km.K.txt and OUT/km.K.done (skipped when rerun with the same inputs). The merge writes
OUT/km.txt (sorted by utterance), OUT/dict.km.txt (`label count` for every cluster, fairseq style) and
OUT/labels_info.json (label_rate = the features' frame rate, n_clusters, model, features). The features
must have the model's dimension and frame rate, and every utterance gets exactly one label per frame
(checked against the feature dir's utt2num_frames when present).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tqdm import tqdm

from wavlm.bin import setup_logging
from wavlm.cluster.kmeans import KMeansError, KMeansModel, set_threads
from wavlm.cluster.labels import (
    DICT,
    INFO,
    LABELS,
    check_num_frames,
    format_labels,
    label_counts,
    read_labels,
    write_dict,
)
from wavlm.data.datadir import atomic_write_text, read_table
from wavlm.features.shards import Shards, add_shard_args, iter_feats, read_feature_info, read_scp, resolve_scp

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feats", required=True, help="feats.scp or its directory")
    p.add_argument("--km", required=True, help="k-means model dir (from wavlm.bin.learn_kmeans)")
    p.add_argument("--out", required=True, help="label dir to write")
    add_shard_args(p)
    p.add_argument("--frame_rate", type=float, default=None,
                   help="frames per second of the features, if their dir has no feats_info.json")
    p.add_argument("--threads", type=int, default=None, help="OpenMP threads for faiss (default: all)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    set_threads(args.threads)
    scp = resolve_scp(args.feats)
    model = KMeansModel.load(args.km)
    info = read_feature_info(scp) or {}
    rate = args.frame_rate if args.frame_rate is not None else info.get("frame_rate")
    if rate is None:
        raise KMeansError(f"{scp.parent}: no feats_info.json with frame_rate; pass --frame_rate")
    rate = float(rate)
    if model.frame_rate is not None and abs(model.frame_rate - rate) > 1e-6:
        raise KMeansError(f"{scp}: features are at {rate:g} frames/s but the k-means model {args.km} was fit on "
                          f"features at {model.frame_rate:g} frames/s")
    if "dim" in info and int(info["dim"]) != model.dim:
        raise KMeansError(f"{scp}: features have dimension {info['dim']}, the model {args.km} expects {model.dim}")
    utts = list(read_scp(scp))
    km_dir = str(Path(args.km).resolve())
    config = {"feats": str(scp.resolve()), "km": km_dir, "km_inertia": model.meta.get("inertia"),
              "n_clusters": model.n_clusters}
    shards = Shards(args.out, "km", args.nj, config)

    def process(part: list[str], job: int) -> dict:
        lines = []
        for utt, m in tqdm(iter_feats(scp, part), total=len(part), desc=f"labels job {job}", mininterval=10):
            if m.ndim != 2 or m.shape[1] != model.dim:
                raise KMeansError(f"{scp}: utterance {utt} has features of shape {m.shape}, "
                                  f"the model expects dimension {model.dim}")
            lines.append(format_labels(utt, model.predict(m)))
        atomic_write_text(shards.path(job, "txt"), "".join(lines))
        return {"num_utts": len(part)}

    def merge() -> None:
        out = shards.merge_text("txt", LABELS, expect=utts)
        labels = read_labels(out)
        u2nf = scp.parent / "utt2num_frames"
        if u2nf.is_file():
            nf = {u: int(v) for u, v in read_table(u2nf).rows.items()}
            check_num_frames(labels, nf, what=str(out))
        counts = label_counts(labels.values(), model.n_clusters)
        write_dict(Path(args.out) / DICT, counts)
        atomic_write_text(Path(args.out) / INFO, json.dumps(
            {"label_rate": rate, "n_clusters": model.n_clusters, "km": km_dir, "feats": str(scp.resolve()),
             "num_utts": len(labels), "num_frames": int(counts.sum()),
             "clusters_used": int((counts > 0).sum())}, indent=1, sort_keys=True) + "\n")
        logger.info("%s: %d utterances, %d frames at %g labels/s, %d of %d clusters used", out, len(labels),
                    int(counts.sum()), rate, int((counts > 0).sum()), model.n_clusters)

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    main()
