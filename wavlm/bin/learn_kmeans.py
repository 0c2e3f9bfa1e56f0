"""Fit k-means (faiss) on frames sampled from one or more feats.scp and save the model.

    python -m wavlm.bin.learn_kmeans --feats dump/mfcc/train --out exp/km_mfcc100 --n_clusters 100 \\
        --percent 0.1 --max_frames 1000000

`--feats` takes a feats.scp or its directory (as written by wavlm.bin.dump_mfcc or wavlm.bin.dump_features);
the frame rate comes from the directory's feats_info.json (or --frame_rate). The model dir gets
centroids.npy and kmeans.json (dim, n_clusters, frame_rate, features, inertia, options). A finished model
with the same inputs and options is kept (the step is skipped) unless --overwrite.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.cluster.kmeans import META, KMeansError, choose_utts, fit_kmeans, sample_frames, set_threads
from wavlm.features.shards import iter_feats, read_feature_info, read_scp, resolve_scp

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feats", required=True, nargs="+", help="feats.scp file(s) or their directories")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--n_clusters", type=int, required=True)
    p.add_argument("--percent", type=float, default=1.0, help="fraction of utterances to sample (0, 1]")
    p.add_argument("--max_frames", type=int, default=None,
                   help="at most this many frames, sampled uniformly from the chosen utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--niter", type=int, default=100, help="Lloyd iterations")
    p.add_argument("--nredo", type=int, default=1, help="runs from different seeds; the best is kept")
    p.add_argument("--spherical", action="store_true", help="cosine k-means (unit-norm centroids)")
    p.add_argument("--init", choices=("k-means++", "random"), default="k-means++",
                   help="seeding: greedy k-means++ on a subsample, or faiss's random rows")
    p.add_argument("--max_points_per_centroid", type=int, default=None,
                   help="let faiss subsample to this many frames per cluster each run (default: use all)")
    p.add_argument("--frame_rate", type=float, default=None,
                   help="frames per second of the features, if their dir has no feats_info.json")
    p.add_argument("--threads", type=int, default=None, help="OpenMP threads for faiss (default: all)")
    p.add_argument("--overwrite", action="store_true", help="refit even if a matching model exists")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def feature_rate(scps: list[Path], override: float | None) -> tuple[float, int | None]:
    rates, dims = set(), set()
    for scp in scps:
        info = read_feature_info(scp) or {}
        rate = override if override is not None else info.get("frame_rate")
        if rate is None:
            raise KMeansError(f"{scp.parent}: no feats_info.json with frame_rate; pass --frame_rate")
        rates.add(float(rate))
        if "dim" in info:
            dims.add(int(info["dim"]))
    if len(rates) > 1 or len(dims) > 1:
        raise KMeansError(f"features {[str(s) for s in scps]} differ in frame rate {rates} or dimension {dims}")
    return rates.pop(), (dims.pop() if dims else None)


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    set_threads(args.threads)
    scps = [resolve_scp(f) for f in args.feats]
    rate, _ = feature_rate(scps, args.frame_rate)
    config = {"feats": [str(s) for s in scps], "n_clusters": args.n_clusters, "percent": args.percent,
              "max_frames": args.max_frames, "seed": args.seed, "niter": args.niter, "nredo": args.nredo,
              "spherical": args.spherical, "init": args.init, "max_points_per_centroid": args.max_points_per_centroid,
              "frame_rate": rate}
    meta_path = Path(args.out) / META
    if meta_path.is_file() and not args.overwrite:
        old = json.loads(meta_path.read_text()).get("config")
        if old == config:
            logger.info("%s: a model with the same inputs and options exists; skipping (--overwrite refits)", args.out)
            return
        logger.info("%s: existing model has other options; refitting", args.out)

    def stream():
        for k, scp in enumerate(scps):
            utts = choose_utts(list(read_scp(scp)), args.percent, args.seed + k)
            logger.info("%s: using %d utterances", scp, len(utts))
            yield from iter_feats(scp, utts)

    x = sample_frames(stream(), max_frames=args.max_frames, seed=args.seed)
    logger.info("sampled %d frames of dimension %d", *x.shape)
    model = fit_kmeans(x, args.n_clusters, niter=args.niter, nredo=args.nredo, seed=args.seed,
                       spherical=args.spherical, init=args.init, max_points_per_centroid=args.max_points_per_centroid)
    model.meta.update({"frame_rate": rate, "feats": config["feats"], "config": config})
    model.save(args.out)
    logger.info("wrote %s (inertia per frame %.5g)", args.out, model.meta["inertia_per_frame"])


if __name__ == "__main__":
    main()
