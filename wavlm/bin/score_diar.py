"""Diarization error rate of wavlm.bin.diarize outputs, with the post-processing tuned on a dev set as SUPERB's
scoring does (s3prl/downstream/diarization/score.sh: median filter 1 or 11 frames x thresholds 0.3 ... 0.7, the
best by DER): every grid point is scored on the first set, the best one is applied to every set.

    python -m wavlm.bin.score_diar --sets exp/wavlm_base/sd/dev exp/wavlm_base/sd/test \\
        --refs data/dev/rttm data/test/rttm --out exp/wavlm_base/sd/scoring --tag wavlm_base

DER (collar --collar, overlapped speech scored) is computed with pyannote.metrics from RTTM files. Writes
    OUT/<set>/hyp.rttm       the turns at the chosen threshold and median filter
    OUT/<set>/result.json    {"task": "sd", "metric": "der", "value", "der", "missed", "false_alarm", "confusion"
                             (% of the reference speech), "speech" (s), "threshold", "median", "hyp_rttm",
                             "ref_rttm" (relative to the working dir), "set", "tag", "upstream", "checkpoint", ...}
    OUT/RESULTS.md           the dev grid, then overall and per-recording DER of every set
    OUT/<set>/activity_<reco>.png   reference and hypothesis speaker activity of the set's first recording
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import kaldiio
import numpy as np

from wavlm.bin import run_main
from wavlm.data.datadir import atomic_write_text
from wavlm.data.rttm import Turn, read_rttm, write_rttm
from wavlm.metrics.diarization import diarization_error_rate, format_der_table, posteriors_to_turns

log = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.score_diar", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", required=True, help="wavlm.bin.diarize output dirs; the first one tunes")
    p.add_argument("--refs", nargs="+", required=True, help="reference RTTM of each set, in the same order")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7", help="comma-separated grid")
    p.add_argument("--medians", default="1,11", help="comma-separated median filter lengths (odd frames)")
    p.add_argument("--collar", type=float, default=0.0, help="seconds around reference boundaries not scored")
    p.add_argument("--tag", default="", help="the model's name in the SUPERB table (default: the model's file name)")
    p.add_argument("--no_plot", action="store_true", help="do not draw the activity png")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (ValueError, OSError))


def read_posteriors(d: Path) -> tuple[dict[str, np.ndarray], dict]:
    info_file = d / "info.json"
    if not info_file.is_file():
        raise ValueError(f"{d}: no info.json (not an output dir of wavlm.bin.diarize)")
    info = json.loads(info_file.read_text())
    return {k: np.asarray(v) for k, v in kaldiio.load_scp(str(d / "posteriors.scp")).items()}, info


def to_turns(post: dict[str, np.ndarray], shift: float, threshold: float, median: int) -> dict[str, list[Turn]]:
    return {r: posteriors_to_turns(r, p, shift, threshold, median) for r, p in sorted(post.items())}


def rel(path: Path) -> str:
    return os.path.relpath(Path(path).resolve(), Path.cwd())


def plot_activity(png: Path, reco: str, ref: list[Turn], hyp: list[Turn], duration: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("ref", s, [t for t in ref if t.speaker == s]) for s in dict.fromkeys(t.speaker for t in ref)]
    rows += [("hyp", s, [t for t in hyp if t.speaker == s]) for s in dict.fromkeys(t.speaker for t in hyp)]
    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.4 * len(rows)))
    for i, (kind, _, ts) in enumerate(rows):
        ax.broken_barh([(t.start, t.dur) for t in ts], (i - 0.35, 0.7),
                       color="tab:blue" if kind == "ref" else "tab:orange")
    ax.set_yticks(range(len(rows)), [f"{kind} {spk}" for kind, spk, _ in rows])
    ax.set_xlim(0, duration)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"{reco}: reference (blue) and hypothesis (orange) speaker activity")
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def run(args: argparse.Namespace) -> None:
    if len(args.sets) != len(args.refs):
        raise ValueError(f"--sets has {len(args.sets)} dirs but --refs {len(args.refs)} files")
    thresholds = [float(x) for x in args.thresholds.split(",")]
    medians = [int(x) for x in args.medians.split(",")]
    out = Path(args.out)
    sets = [(Path(d), Path(r), *read_posteriors(Path(d))) for d, r in zip(args.sets, args.refs, strict=True)]
    refs = [read_rttm(r) for _, r, _, _ in sets]

    # the grid on the first set
    tune_dir, tune_ref, tune_post, tune_info = sets[0]
    grid = []
    for median in medians:
        for th in thresholds:
            res = diarization_error_rate(refs[0], to_turns(tune_post, tune_info["frame_shift"], th, median),
                                         collar=args.collar)
            grid.append((res.der, median, th, res))
            log.info("%s: median %d, threshold %.2f: DER %.2f%%", tune_dir, median, th, res.der)
    best_der, median, threshold, _ = min(grid, key=lambda g: g[0])  # the first of equal ones, in grid order
    lines = [f"# Diarization error rate (collar {args.collar} s, overlap scored; pyannote.metrics)", "",
             f"Post-processing tuned on {tune_dir.name} ({rel(tune_ref)}): median filter {median} frames, threshold "
             f"{threshold} (DER {best_der:.2f}%)", "",
             "| median | threshold | DER % | missed % | false alarm % | confusion % |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {m} | {t} | {r.der:.2f} | {r.missed:.2f} | {r.false_alarm:.2f} | {r.confusion:.2f} |"
              for _, m, t, r in grid]

    for (d, ref_file, post, info), ref in zip(sets, refs, strict=True):
        name = d.name
        hyp = to_turns(post, info["frame_shift"], threshold, median)
        res = diarization_error_rate(ref, hyp, collar=args.collar)
        (out / name).mkdir(parents=True, exist_ok=True)
        hyp_file = out / name / "hyp.rttm"
        write_rttm(hyp_file, [t for ts in hyp.values() for t in ts])
        model = info["model"]
        result = {"task": "sd", "metric": "der", "value": round(res.der, 4), "der": round(res.der, 4),
                  "missed": round(res.missed, 4), "false_alarm": round(res.false_alarm, 4),
                  "confusion": round(res.confusion, 4), "speech": round(res.total, 3), "collar": args.collar,
                  "threshold": threshold, "median": median, "tuned_on": tune_dir.name,
                  "hyp_rttm": rel(hyp_file), "ref_rttm": rel(ref_file), "set": name,
                  "tag": args.tag or Path(model).name, "checkpoint": model, "upstream": model,
                  "recordings": len(post)}
        atomic_write_text(out / name / "result.json", json.dumps(result, indent=1) + "\n")
        lines += ["", f"## {name} ({rel(ref_file)})", "", format_der_table(res)]
        log.info("%s: DER %.2f%% (missed %.2f, false alarm %.2f, confusion %.2f) -> %s", name, res.der, res.missed,
                 res.false_alarm, res.confusion, out / name / "result.json")
        print(f"{result['tag']} sd {name} DER {res.der:.2f}")
        if not args.no_plot and post:
            reco = sorted(post)[0]
            png = out / name / f"activity_{reco}.png"
            plot_activity(png, reco, ref.get(reco, []), hyp[reco], len(post[reco]) * info["frame_shift"])
    atomic_write_text(out / "RESULTS.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
