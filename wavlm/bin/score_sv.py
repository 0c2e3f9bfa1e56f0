"""Score a speaker-verification trial list by cosine similarity (optionally AS-norm), or tabulate several.

    python -m wavlm.bin.score_sv --emb exp/sv/emb/test/emb.scp --trials data/trials/vox1_O \\
        --out exp/sv/score_vox1_O [--cohort_emb exp/sv/emb/train/emb.scp --utt2spk data/train/utt2spk --top_n 300]
    python -m wavlm.bin.score_sv --summarize exp/sv/score_* --out exp/sv/RESULTS.md

Embeddings are kaldiio ark/scp vectors (or [1, D] matrices). Trials are `enroll test target|nontarget`
lines; the list's name is the trial file's name. Scoring writes OUT/scores (`enroll test score`, trial
order), OUT/result.json (eer in %, threshold, mindcf_0.01, mindcf_0.05 with their thresholds, n_target,
n_nontarget, norm: none|asnorm, ...) and OUT/det.png, and prints
`EER 1.23% minDCF(0.01) 0.123 minDCF(0.05) 0.089 (vox1_O, asnorm)`.

With --cohort_emb and --utt2spk the scores are AS-norm'ed: the cohort is the mean (length-normalised)
embedding of each training speaker, and each side of a trial is normalised by the mean/std of its
--top_n highest cosine scores against it. minDCF uses C_miss = C_fa = 1 (normalised, NIST SRE style).
EER/minDCF definitions: see wavlm/metrics/sv.py.

--summarize reads the result.json of each given scoring dir (or file) and writes a markdown table:
list, norm, #trials, EER (%), minDCF 0.01, minDCF 0.05.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.data.datadir import DataDirError, atomic_write_text, read_table
from wavlm.metrics.sv import (
    SvError,
    as_norm,
    cosine_scores,
    det_curve_png,
    eer,
    min_dcf,
    read_embeddings,
    read_trials,
    speaker_means,
)

logger = logging.getLogger(__name__)

SCORES, RESULT_JSON, DET_PNG = "scores", "result.json", "det.png"
P_TARGETS = (0.01, 0.05)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--emb", help="kaldiio scp of the embeddings of the trial utterances")
    p.add_argument("--trials", help="trial list `enroll test target|nontarget`")
    p.add_argument("--out", required=True, help="scoring dir to write (scoring), or the markdown file (--summarize)")
    p.add_argument("--cohort_emb", default=None, help="kaldiio scp of training-set embeddings (AS-norm cohort)")
    p.add_argument("--utt2spk", default=None, help="utt2spk of the cohort utterances (with --cohort_emb)")
    p.add_argument("--top_n", type=int, default=300, help="AS-norm: number of top cohort scores per side")
    p.add_argument("--summarize", "--results_md", nargs="+", metavar="SCORE_DIR", default=None,
                   help=f"scoring dirs (or {RESULT_JSON} files) to tabulate into the markdown file OUT")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def _fmt(x: float) -> str:
    return f"{x:.6f}"


def run_score(emb_scp: str, trials_path: str, out: Path, *, cohort_emb: str | None = None,
              utt2spk: str | None = None, top_n: int = 300) -> str:
    trials = read_trials(trials_path)
    emb = read_embeddings(emb_scp)
    scores = cosine_scores(emb, trials)
    norm = "none"
    extra: dict = {}
    if cohort_emb is not None:
        try:
            u2s = read_table(utt2spk).rows
        except DataDirError as e:
            raise SvError(str(e)) from None
        spks, cohort = speaker_means(read_embeddings(cohort_emb), u2s)
        logger.info("AS-norm: cohort of %d speakers, top %d", len(spks), top_n)
        scores = as_norm(scores, trials.enroll, trials.test, emb, cohort, top_n)
        norm = "asnorm"
        extra = {"cohort_emb": str(Path(cohort_emb).resolve()), "n_cohort": len(spks),
                 "top_n": min(top_n, len(spks))}
    labels = trials.labels
    e, e_thr = eer(scores, labels)
    res = {"list": trials.name, "trials": str(trials.path.resolve()), "emb": str(Path(emb_scp).resolve()),
           "norm": norm, **extra, "n_target": int(labels.sum()), "n_nontarget": int((~labels).sum()),
           "eer": round(e, 4), "threshold": float(e_thr)}
    for p in P_TARGETS:
        d, d_thr = min_dcf(scores, labels, p)
        res[f"mindcf_{p}"] = round(d, 5)
        res[f"mindcf_{p}_threshold"] = float(d_thr)
    atomic_write_text(out / SCORES, "".join(f"{a} {b} {_fmt(s)}\n"
                                            for a, b, s in zip(trials.enroll, trials.test, scores, strict=True)))
    atomic_write_text(out / RESULT_JSON, json.dumps(res, indent=1, sort_keys=True) + "\n")
    det_curve_png(scores, labels, out / DET_PNG, title=f"{trials.name} ({norm}): EER {e:.2f}%")
    logger.info("%s: %d trials scored; wrote %s", trials.path, len(trials), out)
    return (f"EER {e:.2f}% minDCF(0.01) {res['mindcf_0.01']:.3f} minDCF(0.05) {res['mindcf_0.05']:.3f} "
            f"({trials.name}, {norm})")


def _expand(paths: list[str]) -> list[Path]:
    """Shell globs that matched nothing reach us verbatim; expand them here (and fail if still nothing)."""
    out: list[Path] = []
    for p in paths:
        matches = sorted(glob.glob(p)) if glob.has_magic(p) and not Path(p).exists() else [p]
        if not matches:
            raise SvError(f"--summarize: {p} matches nothing")
        out.extend(Path(m) for m in matches)
    return out


def results_md(dirs: list[Path]) -> str:
    rows = []
    for d in dirs:
        f = d if d.is_file() else d / RESULT_JSON
        if not f.is_file():
            raise SvError(f"{f}: missing (score with `python -m wavlm.bin.score_sv ...`)")
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
            n = int(r["n_target"]) + int(r["n_nontarget"])
            cells = [str(r["list"]), str(r["norm"]), str(n), f"{float(r['eer']):.2f}",
                     f"{float(r['mindcf_0.01']):.4f}", f"{float(r['mindcf_0.05']):.4f}"]
        except (ValueError, KeyError, TypeError) as e:
            raise SvError(f"{f}: not a result.json of score_sv ({type(e).__name__}: {e})") from None
        rows.append("| " + " | ".join(cells) + " |")
    return ("# Speaker verification results\n\n"
            "Cosine scoring; asnorm: adaptive s-norm against training-speaker means. EER in %; minDCF normalised, "
            "C_miss = C_fa = 1, P_target 0.01 and 0.05.\n\n"
            "| list | norm | #trials | EER | minDCF 0.01 | minDCF 0.05 |\n"
            "|---|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.summarize is None and (args.emb is None or args.trials is None):
        parser.error("give --emb and --trials to score, or --summarize SCORE_DIR ... to tabulate")
    if args.summarize is not None and (args.emb or args.trials):
        parser.error("--summarize does not take --emb/--trials")
    if (args.cohort_emb is None) != (args.utt2spk is None):
        parser.error("AS-norm needs both --cohort_emb and --utt2spk")
    if args.top_n < 2:
        parser.error("--top_n must be >= 2")
    out = Path(args.out)
    try:
        if args.summarize is not None:
            dirs = _expand(args.summarize)
            atomic_write_text(out, results_md(dirs))
            logger.info("wrote %s (%d scorings)", out, len(dirs))
        else:
            print(run_score(args.emb, args.trials, out, cohort_emb=args.cohort_emb, utt2spk=args.utt2spk,
                            top_n=args.top_n))
    except (SvError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
