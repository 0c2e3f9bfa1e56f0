"""Tuning decoding weights on a dev set: a grid over named options (LM weight, word score, ...), each point
decoded and scored by WER, the lowest chosen (ties: the first point in grid order) and applied to test sets.

fairseq's wav2vec 2.0 / HuBERT papers tune the LM weight and word insertion score on the dev sets with a
Bayesian search; a grid is what Kaldi and ESPnet recipes do and is exhaustive and reproducible on the few
points that matter here. Each point's result is written as it finishes, so an interrupted tuning resumes.
"""
from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from wavlm.data.datadir import atomic_write_text
from wavlm.metrics.wer import score

log = logging.getLogger(__name__)


class TuneError(ValueError):
    pass


def parse_grid(spec: str) -> list[dict[str, float]]:
    """`"lm_weight=0.5,1,2 word_score=-1,0"` -> the 6 points of the cross product, in that order."""
    axes: list[tuple[str, list[float]]] = []
    for part in spec.split():
        name, sep, values = part.partition("=")
        if not sep or not name or not values:
            raise TuneError(f"grid {spec!r}: {part!r} is not NAME=V1,V2,...")
        try:
            axes.append((name, [float(v) for v in values.split(",")]))
        except ValueError:
            raise TuneError(f"grid {spec!r}: {part!r} has a value that is not a number") from None
    if not axes:
        raise TuneError("empty grid")
    names = [a for a, _ in axes]
    if len(set(names)) != len(names):
        raise TuneError(f"grid {spec!r} names an option twice")
    return [dict(zip(names, vals, strict=True)) for vals in itertools.product(*(v for _, v in axes))]


def point_name(point: Mapping[str, float]) -> str:
    return "_".join(f"{k}{v:g}" for k, v in point.items())


def _done(out: Path, point: Mapping[str, float], stamp: Mapping) -> dict | None:
    f = out / "points" / f"{point_name(point)}.json"
    done = json.loads(f.read_text()) if f.is_file() else None
    return done if done is not None and done.get("stamp") == dict(stamp) else None


def pending(points: list[dict[str, float]], out_dir: str | Path, stamp: Mapping | None = None
            ) -> list[dict[str, float]]:
    """The points not yet scored with this `stamp` (to decode them all in one pass over the data)."""
    return [p for p in points if _done(Path(out_dir), p, stamp or {}) is None]


def tune(points: list[dict[str, float]], decode: Callable[[dict[str, float]], dict[str, str]],
         refs: Mapping[str, str], out_dir: str | Path, stamp: Mapping | None = None) -> dict:
    """Decode and score every point (skipping points already scored with the same `stamp`: model, data and
    fixed options); write `grid.tsv` (point, WER) and `best.json` ({"options": best point, "wer", ...})."""
    out = Path(out_dir)
    (out / "points").mkdir(parents=True, exist_ok=True)
    stamp = dict(stamp or {})
    results = []
    for point in points:
        f = out / "points" / f"{point_name(point)}.json"
        done = _done(out, point, stamp)
        if done is None:
            hyps = decode(point)
            r = score(refs, hyps)
            done = {"options": point, "wer": r.wer, "errors": r.errors, "words": r.n_ref_words, "stamp": stamp}
            atomic_write_text(f, json.dumps(done, indent=1) + "\n")
            log.info("%s: WER %.2f", point_name(point), r.wer)
        results.append(done)
    best = min(results, key=lambda d: d["errors"])  # min() keeps the first of equal ones: grid order
    lines = ["\t".join([*points[0], "wer"])]
    lines += ["\t".join([*(f"{v:g}" for v in d["options"].values()), f"{d['wer']:.2f}"]) for d in results]
    atomic_write_text(out / "grid.tsv", "\n".join(lines) + "\n")
    atomic_write_text(out / "best.json", json.dumps({k: best[k] for k in ("options", "wer", "errors", "words")},
                                                    indent=1) + "\n")
    log.info("best of %d points: %s (WER %.2f)", len(results), point_name(best["options"]), best["wer"])
    return best
