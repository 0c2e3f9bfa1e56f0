"""Score a decoding's word error rate against a Kaldi `text` file, or tabulate several scorings.

    python -m wavlm.bin.score_wer --ref data/test_clean/text --hyp exp/decode/text --out exp/decode/wer [--json]
    python -m wavlm.bin.score_wer --summarize exp/asr/decode_*/*/wer --out exp/asr/RESULTS.md

Scoring writes OUT/result.txt (Kaldi compute-wer lines: `%WER 12.34 [ 123 / 1000, 10 ins, 20 del, 93 sub ]`,
`%SER ...`, `Scored ...`), OUT/per_utt.txt (sclite-like REF/HYP/Eval alignment per utterance, S/D/I marks)
and with --json OUT/result.json; it prints the %WER line. Words are compared exactly as written.
Every reference utterance needs a hypothesis line (`utt` alone is an empty hypothesis) unless
--allow_missing; hypotheses without a reference are an error.

--summarize (alias --results_md) reads the result.json of each given scoring dir (or file) and writes a
markdown table: set, #utts, #words, WER, sub, del, ins (% of reference words), SER (% of utterances).
The set name is the dir's path relative to the dir of OUT, without a trailing `wer` or `cer`.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.data.datadir import atomic_write_text
from wavlm.metrics.wer import WerError, format_alignment, read_text, score

logger = logging.getLogger(__name__)

RESULT_TXT, PER_UTT, RESULT_JSON = "result.txt", "per_utt.txt", "result.json"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", help="reference Kaldi text file `utt word word ...`")
    p.add_argument("--hyp", help="hypothesis Kaldi text file `utt word word ...`")
    p.add_argument("--out", required=True, help="scoring dir to write (scoring), or the markdown file (--summarize)")
    p.add_argument("--json", action="store_true", help=f"also write OUT/{RESULT_JSON}")
    p.add_argument("--unit", choices=["word", "char"], default="word",
                   help="char: character error rate (each character a token, the space as `_`)")
    p.add_argument("--allow_missing", action="store_true",
                   help="score reference utterances without a hypothesis as all deletions (reported)")
    p.add_argument("--summarize", "--results_md", nargs="+", metavar="WER_DIR", default=None,
                   help=f"scoring dirs (or {RESULT_JSON} files) to tabulate into the markdown file OUT")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def as_chars(texts: dict[str, str]) -> dict[str, str]:
    return {u: " ".join("_" if c == " " else c for c in " ".join(t.split())) for u, t in texts.items()}


def run_score(ref: str, hyp: str, out: Path, *, write_json: bool, allow_missing: bool, unit: str = "word") -> str:
    refs = read_text(ref, allow_empty=False)
    hyps = read_text(hyp)
    if unit == "char":
        refs, hyps = as_chars(refs), as_chars(hyps)
    res = score(refs, hyps, allow_missing=allow_missing, ref_name=ref, hyp_name=hyp)
    summary = res.summary()
    if unit == "char":
        summary = summary.replace("%WER", "%CER", 1)
    atomic_write_text(out / RESULT_TXT, summary)
    atomic_write_text(out / PER_UTT, "".join(format_alignment(s) for s in res.utts))
    if write_json:
        data = {"ref": str(Path(ref).resolve()), "hyp": str(Path(hyp).resolve()), "unit": unit, **res.to_dict()}
        atomic_write_text(out / RESULT_JSON, json.dumps(data, indent=1, sort_keys=True) + "\n")
    logger.info("%s: %d utterances, %d reference words scored; wrote %s", hyp, res.n_utts, res.n_ref_words, out)
    return summary.splitlines()[0]


def _expand(paths: list[str]) -> list[Path]:
    """Shell globs that matched nothing reach us verbatim; expand them here (and fail if still nothing)."""
    out: list[Path] = []
    for p in paths:
        matches = sorted(glob.glob(p)) if glob.has_magic(p) and not Path(p).exists() else [p]
        if not matches:
            raise WerError(f"--summarize: {p} matches nothing")
        out.extend(Path(m) for m in matches)
    return out


def set_name(wer_dir: Path, base: Path) -> str:
    d = wer_dir.resolve()
    if d.name in ("wer", "cer"):
        d = d.parent
    try:
        return str(d.relative_to(base.resolve())) or "."
    except ValueError:
        return str(d)


def results_md(dirs: list[Path], out: Path) -> str:
    rows = []
    for d in dirs:
        f = d if d.is_file() else d / RESULT_JSON
        if not f.is_file():
            raise WerError(f"{f}: missing (score with `python -m wavlm.bin.score_wer ... --json`)")
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
            n_words = int(r["n_ref_words"])
            pct = [100.0 * int(r[k]) / n_words for k in ("sub", "del", "ins")]
            cells = [set_name(f.parent, out.parent), r.get("unit", "word"), str(int(r["n_utts"])), str(n_words),
                     f"{float(r['wer']):.2f}",
                     *(f"{x:.2f}" for x in pct), f"{float(r['ser']):.2f}"]
            rows.append("| " + " | ".join(cells) + " |")
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as e:
            raise WerError(f"{f}: not a result.json of score_wer ({type(e).__name__}: {e})") from None
    return ("# WER results\n\n"
            "Error rate (word or character), sub, del, ins: % of reference tokens; SER: % of utterances with an "
            "error.\n\n"
            "| set | unit | #utts | #tokens | error rate | sub | del | ins | SER |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.summarize is None and (args.ref is None or args.hyp is None):
        parser.error("give --ref and --hyp to score, or --summarize WER_DIR ... to tabulate")
    if args.summarize is not None and (args.ref or args.hyp):
        parser.error("--summarize does not take --ref/--hyp")
    out = Path(args.out)
    try:
        if args.summarize is not None:
            dirs = _expand(args.summarize)
            atomic_write_text(out, results_md(dirs, out))
            logger.info("wrote %s (%d scorings)", out, len(dirs))
        else:
            print(run_score(args.ref, args.hyp, out, write_json=args.json, allow_missing=args.allow_missing,
                            unit=args.unit))
    except (WerError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
