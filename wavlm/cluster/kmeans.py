"""k-means with faiss: fitting on sampled frames, saving/loading the model, assigning labels.

A model is a directory with `centroids.npy` ([K, D] float32) and `kmeans.json` (dim, n_clusters,
frame_rate of the features it was fit on, the feature scp, inertia, options). `kmeans.json` is written
last, so a directory without it is an unfinished fit.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wavlm.data.datadir import atomic_write_text

logger = logging.getLogger(__name__)

CENTROIDS = "centroids.npy"
META = "kmeans.json"


class KMeansError(ValueError):
    """A k-means model or input that cannot be used; the message names the file or utterance."""


@dataclass
class KMeansModel:
    centroids: np.ndarray  # [K, D] float32
    meta: dict = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def spherical(self) -> bool:
        return bool(self.meta.get("spherical", False))

    @property
    def frame_rate(self) -> float | None:
        r = self.meta.get("frame_rate")
        return None if r is None else float(r)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Nearest centroid of each row of x [N, D] (cosine for spherical models) -> int64 [N]."""
        return assign(x, self.centroids, spherical=self.spherical)[0]

    def save(self, outdir: str | os.PathLike) -> None:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / META).unlink(missing_ok=True)  # the model is incomplete until the metadata is back
        fd, tmp = tempfile.mkstemp(dir=outdir, prefix=f".{CENTROIDS}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(self.centroids, dtype=np.float32))
            os.replace(tmp, outdir / CENTROIDS)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {**self.meta, "n_clusters": self.n_clusters, "dim": self.dim}
        atomic_write_text(outdir / META, json.dumps(meta, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> KMeansModel:
        path = Path(path)
        if not (path / META).is_file() or not (path / CENTROIDS).is_file():
            raise KMeansError(f"{path}: not a finished k-means model (needs {CENTROIDS} and {META})")
        meta = json.loads((path / META).read_text())
        c = np.load(path / CENTROIDS)
        if c.ndim != 2 or c.shape != (meta.get("n_clusters"), meta.get("dim")):
            raise KMeansError(f"{path}: {CENTROIDS} has shape {c.shape}, {META} says "
                              f"({meta.get('n_clusters')}, {meta.get('dim')})")
        return cls(c.astype(np.float32), meta)


def _faiss():
    """faiss, imported without its loader's INFO lines about which SIMD build it picked."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    return faiss


def set_threads(n: int | None) -> None:
    if n:
        _faiss().omp_set_num_threads(int(n))


def fit_kmeans(
    x: np.ndarray,
    n_clusters: int,
    *,
    niter: int = 100,
    nredo: int = 1,
    seed: int = 0,
    spherical: bool = False,
    init: str = "k-means++",
    init_size: int | None = None,
    max_points_per_centroid: int | None = None,
    verbose: bool = False,
) -> KMeansModel:
    """Lloyd's k-means (faiss) on x [N, D]; the best of `nredo` runs by inertia on all of x.

    init "k-means++": greedy k-means++ seeding (as scikit-learn's) on `init_size` random rows (default
    max(3 K, 20000)), then faiss's Lloyd iterations; "random": faiss's own seeding with K random rows.
    faiss subsamples to `max_points_per_centroid * K` rows per run; None uses every row given (sample the
    frames beforehand with `sample_frames` instead).
    """
    faiss = _faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise KMeansError(f"expected features [N, D], got shape {x.shape}")
    n, d = x.shape
    if n < n_clusters:
        raise KMeansError(f"{n} frames are fewer than the {n_clusters} clusters asked for")
    if not np.all(np.isfinite(x)):
        raise KMeansError("features contain NaN or inf")
    if init not in ("k-means++", "random"):
        raise KMeansError(f"unknown init {init!r} (k-means++ or random)")
    mppc = max_points_per_centroid if max_points_per_centroid else max(256, math.ceil(n / n_clusters))
    t0 = time.time()
    best: tuple[float, np.ndarray] | None = None
    for r in range(nredo):
        km = faiss.Kmeans(d, n_clusters, niter=niter, nredo=1, seed=seed + r, spherical=spherical,
                          max_points_per_centroid=mppc, verbose=verbose)
        if init == "k-means++":
            rng = np.random.default_rng(seed + r)
            m = min(n, init_size or max(3 * n_clusters, 20000))
            sub = x if m == n else x[np.sort(rng.choice(n, m, replace=False))]
            c0 = kmeans_pp_init(sub, n_clusters, rng)
            if spherical:
                c0 /= np.maximum(np.linalg.norm(c0, axis=1, keepdims=True), 1e-12)
            km.train(x, init_centroids=c0)
        else:
            km.train(x)
        c = np.asarray(km.centroids, dtype=np.float32).reshape(n_clusters, d)
        inert = float(assign(x, c, spherical=spherical)[1].sum())
        logger.info("k-means run %d/%d: inertia %.6g", r + 1, nredo, inert)
        if best is None or inert < best[0]:
            best = (inert, c)
    elapsed = time.time() - t0
    inert, centroids = best
    logger.info("k-means: %d frames x %d dims -> %d clusters in %.1fs; inertia %.6g (%.6g per frame)",
                n, d, n_clusters, elapsed, inert, inert / n)
    meta = {"inertia": inert, "inertia_per_frame": inert / n, "num_frames": n, "niter": niter, "nredo": nredo,
            "seed": seed, "spherical": spherical, "init": init, "max_points_per_centroid": mppc,
            "fit_seconds": elapsed}
    return KMeansModel(centroids, meta)


def kmeans_pp_init(x: np.ndarray, k: int, rng: np.random.Generator, n_trials: int | None = None) -> np.ndarray:
    """Greedy k-means++ seeding: each new centre is the best of `n_trials` (default 2 + ln k) candidates
    drawn proportionally to the squared distance to the nearest chosen centre."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    trials = n_trials or 2 + int(math.log(k))
    norms = np.einsum("ij,ij->i", x, x)

    def sqdist(idx: np.ndarray) -> np.ndarray:  # [len(idx), n]
        return np.maximum(norms[idx, None] + norms[None, :] - 2.0 * (x[idx] @ x.T), 0.0)

    chosen = [int(rng.integers(n))]
    closest = sqdist(np.array(chosen))[0].astype(np.float64)
    for _ in tqdm(range(1, k), desc="k-means++ init", mininterval=10, disable=k < 1000):
        cum = np.cumsum(closest)
        if cum[-1] <= 0:  # fewer distinct points than clusters: pick any others
            cand = rng.integers(n, size=trials)
        else:
            cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        new = np.minimum(closest[None, :], sqdist(cand))
        b = int(np.argmin(new.sum(1)))
        chosen.append(int(cand[b]))
        closest = new[b]
    return x[chosen].copy()


def assign(x: np.ndarray, centroids: np.ndarray, *, spherical: bool = False,
           batch: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centroid int64 [N], squared L2 distance to it float64 [N]) by exact search with faiss.

    Spherical models assign by the largest cosine (rows of x normalised), as faiss's spherical k-means does;
    the distance returned is still the squared L2 distance of the raw row to its centroid.
    """
    faiss = _faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != c.shape[1]:
        raise KMeansError(f"features have shape {x.shape}, the model expects dimension {c.shape[1]}")
    index = faiss.IndexFlatIP(c.shape[1]) if spherical else faiss.IndexFlatL2(c.shape[1])
    index.add(c)
    labels = np.empty(x.shape[0], dtype=np.int64)
    sqd = np.empty(x.shape[0], dtype=np.float64)
    for s in range(0, x.shape[0], batch):
        xb = x[s : s + batch]
        q = xb / np.maximum(np.linalg.norm(xb, axis=1, keepdims=True), 1e-12) if spherical else xb
        _, ib = index.search(q, 1)
        lb = ib[:, 0]
        labels[s : s + batch] = lb
        diff = xb.astype(np.float64) - c[lb].astype(np.float64)
        sqd[s : s + batch] = np.einsum("ij,ij->i", diff, diff)
    return labels, sqd


def inertia(x: np.ndarray, centroids: np.ndarray) -> float:
    """Sum over rows of x of the squared L2 distance to the nearest centroid (computed in float64)."""
    return float(assign(x, centroids)[1].sum())


def sample_frames(
    feats: Iterable[tuple[str, np.ndarray]],
    *,
    max_frames: int | None = None,
    seed: int = 0,
    total: int | None = None,
) -> np.ndarray:
    """All frames of the given utterances, or a uniform random sample of `max_frames` of them.

    Streams: each frame gets a random key and the `max_frames` smallest keys are kept, so memory stays
    within about 2 x max_frames x D whatever the corpus size, and the sample is exactly uniform.
    """
    rng = np.random.default_rng(seed)
    bufs: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    held = 0
    dim = None
    for utt, m in tqdm(feats, total=total, desc="loading features", mininterval=10):
        if m.ndim != 2 or m.shape[0] == 0:
            raise KMeansError(f"utterance {utt}: features have shape {m.shape}, expected [T>0, D]")
        if dim is None:
            dim = m.shape[1]
        elif m.shape[1] != dim:
            raise KMeansError(f"utterance {utt}: features have dimension {m.shape[1]}, earlier ones {dim}")
        bufs.append(m.astype(np.float32, copy=False))
        if max_frames:
            keys.append(rng.random(m.shape[0]))
        held += m.shape[0]
        if max_frames and held > 2 * max_frames:
            x, k = np.concatenate(bufs), np.concatenate(keys)
            keep = np.argpartition(k, max_frames)[:max_frames]
            bufs, keys, held = [x[keep]], [k[keep]], max_frames
    if not bufs:
        raise KMeansError("no features to sample from")
    x = np.concatenate(bufs)
    if max_frames and x.shape[0] > max_frames:
        k = np.concatenate(keys)
        x = x[np.sort(np.argpartition(k, max_frames)[:max_frames])]
    return np.ascontiguousarray(x)


def choose_utts(utts: list[str], percent: float, seed: int) -> list[str]:
    """A random fraction (0 < percent <= 1) of the utterances, kept in their original order."""
    if not 0 < percent <= 1:
        raise KMeansError(f"--percent must be in (0, 1], got {percent}")
    if percent >= 1:
        return list(utts)
    n = max(1, math.ceil(len(utts) * percent))
    idx = np.sort(np.random.default_rng(seed).choice(len(utts), n, replace=False))
    return [utts[i] for i in idx]
