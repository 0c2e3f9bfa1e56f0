"""k-means benchmark: our faiss k-means (wavlm.cluster.kmeans.fit_kmeans) vs scikit-learn's MiniBatchKMeans
with the settings of fairseq's HuBERT `simple_kmeans/learn_kmeans.py` (init k-means++, max_iter 100,
batch_size 10000, tol 0, max_no_improvement 100, n_init 20, reassignment_ratio 0, init_size default),
on the same 768-dim features (500 clusters, >= 200k frames), both with the same number of threads.

The features are a random Gaussian mixture standing in for WavLM/HuBERT hidden states (no corpus or
checkpoint is needed): `--components` means drawn from N(0, I), mixture weights from a Dirichlet(1)
(unbalanced, as phones are), each component with isotropic noise of its own scale U(0.5, 1.5) x --noise.
Both inertias are computed the same way, exactly, on all frames (float64 sum of squared distances to
the nearest centroid).

    python bench/bench_kmeans.py                       # 200k x 768, 500 clusters, 2 threads
    python bench/bench_kmeans.py --n_init 3            # cheaper peer run (reported in the output)

Needs scikit-learn (a bench extra, not a runtime dependency).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--clusters", type=int, default=500)
    p.add_argument("--components", type=int, default=1000, help="Gaussian components of the synthetic data")
    p.add_argument("--noise", type=float, default=0.8, help="noise scale relative to the spread of the means")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n_init", type=int, default=20, help="sklearn n_init (fairseq: 20)")
    p.add_argument("--faiss_niter", type=int, default=20, help="Lloyd iterations of our faiss k-means")
    p.add_argument("--faiss_nredo", type=int, default=3, help="k-means++ restarts of ours (best kept)")
    p.add_argument("--faiss_max_points_per_centroid", type=int, default=None,
                   help="let faiss subsample per run (default: all frames)")
    p.add_argument("--skip_sklearn", action="store_true")
    p.add_argument("--json", default=None, help="also write the results here")
    return p


def make_data(n: int, dim: int, components: int, noise: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    means = rng.standard_normal((components, dim)).astype(np.float32)
    weights = rng.dirichlet(np.ones(components))
    scales = (rng.uniform(0.5, 1.5, components) * noise).astype(np.float32)
    z = rng.choice(components, n, p=weights)
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 20_000):
        zz = z[s : s + 20_000]
        x[s : s + len(zz)] = means[zz] + scales[zz, None] * rng.standard_normal((len(zz), dim), dtype=np.float32)
    return x


def main() -> None:
    args = get_parser().parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    from threadpoolctl import threadpool_limits

    from wavlm.cluster.kmeans import fit_kmeans, inertia, set_threads

    set_threads(args.threads)
    t = time.time()
    x = make_data(args.frames, args.dim, args.components, args.noise, args.seed)
    print(f"data: {x.shape[0]} frames x {x.shape[1]} dims, {args.components}-component Gaussian mixture "
          f"({time.time() - t:.1f}s to make); {args.clusters} clusters; {args.threads} threads", flush=True)
    res: dict = {"frames": x.shape[0], "dim": x.shape[1], "clusters": args.clusters, "threads": args.threads}

    def run_faiss(tag: str) -> tuple[float, float]:
        t, c = time.time(), time.process_time()
        model = fit_kmeans(x, args.clusters, niter=args.faiss_niter, nredo=args.faiss_nredo, seed=args.seed,
                           max_points_per_centroid=args.faiss_max_points_per_centroid)
        sec, cpu = time.time() - t, time.process_time() - c
        res.setdefault("faiss_cpu_seconds_runs", []).append(cpu)
        inert = inertia(x, model.centroids)
        print(f"faiss k-means ({tag}; k-means++ init, {args.faiss_niter} Lloyd iterations, nredo {args.faiss_nredo}):"
              f" {sec:.1f}s wall, {cpu:.1f}s CPU, inertia {inert:.6g}", flush=True)
        return sec, inert

    with threadpool_limits(limits=args.threads):
        # timed before and after the peer and the slower run used: the machine may be shared (CPU times shown too)
        sec1, res["faiss_inertia"] = run_faiss("run 1")
        res["faiss_seconds_runs"] = [sec1]
        if not args.skip_sklearn:
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(n_clusters=args.clusters, init="k-means++", max_iter=100, batch_size=10000,
                                 tol=0.0, max_no_improvement=100, n_init=args.n_init, reassignment_ratio=0.0,
                                 init_size=None, compute_labels=False, random_state=args.seed, verbose=0)
            t, c = time.time(), time.process_time()
            km.fit(x)
            res["sklearn_seconds"] = time.time() - t
            res["sklearn_cpu_seconds"] = time.process_time() - c
            res["sklearn_inertia"] = inertia(x, km.cluster_centers_.astype(np.float32))
            res["sklearn_n_init"] = args.n_init
            res["sklearn_steps"] = int(km.n_steps_)
            print(f"sklearn MiniBatchKMeans (fairseq HuBERT settings, n_init {args.n_init}): "
                  f"{res['sklearn_seconds']:.1f}s wall, {res['sklearn_cpu_seconds']:.1f}s CPU "
                  f"({km.n_steps_} minibatch steps), "
                  f"inertia {res['sklearn_inertia']:.6g}", flush=True)
            sec2, _ = run_faiss("run 2, same seed")
            res["faiss_seconds_runs"].append(sec2)
        res["faiss_seconds"] = max(res["faiss_seconds_runs"])
        if not args.skip_sklearn:
            res["speedup"] = res["sklearn_seconds"] / res["faiss_seconds"]
            res["inertia_ratio"] = res["faiss_inertia"] / res["sklearn_inertia"]
            res["cpu_speedup"] = res["sklearn_cpu_seconds"] / max(res["faiss_cpu_seconds_runs"])
            ok = res["speedup"] >= 3 and res["inertia_ratio"] <= 1.01
            print(f"speed: faiss is {res['speedup']:.2f}x faster (slower faiss run); inertia faiss/sklearn = "
                  f"{res['inertia_ratio']:.4f}; CPU-time ratio {res['cpu_speedup']:.2f}x "
                  f"(target >= 3x at <= 1.01: {'met' if ok else 'NOT met'})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    json.dump(res, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
