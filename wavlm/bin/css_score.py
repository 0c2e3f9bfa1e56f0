"""Utterance-wise WER of separated LibriCSS streams (the LibriCSS protocol: every stream of an utterance is
recognised and the one with the fewest errors against the reference is kept), and the table by condition.

    python -m wavlm.bin.css_score --ref data/libricss_OV10/text --hyp dec/stream0/text dec/stream1/text \\
        --out exp/css_wavlm/wer/OV10
    python -m wavlm.bin.css_score --table "no separation=exp/nosep/wer" "WavLM + Conformer=exp/css_wavlm/wer" \\
        --out exp/RESULTS_css.md        # columns: the condition dirs (0S 0L OV10 ... OV40) under each

Scoring writes OUT/result.json (wer, errors, reference words, utterances, how often each stream was kept).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.data.datadir import atomic_write_text
from wavlm.metrics.css_eval import CSSEvalError, Result, pick_lowest_wer
from wavlm.metrics.wer import WerError, read_text

logger = logging.getLogger(__name__)
CONDITIONS = ("0S", "0L", "OV10", "OV20", "OV30", "OV40")


def score(ref: str, hyps: list[str]) -> Result:
    refs = read_text(ref, allow_empty=False)
    streams = [read_text(h) for h in hyps]
    res = Result()
    for utt, text in refs.items():
        missing = [h for h, s in zip(hyps, streams, strict=True) if utt not in s]
        if missing:
            raise CSSEvalError(f"{missing[0]}: no hypothesis for utterance {utt} of {ref}")
        res.choices[utt] = pick_lowest_wer([s[utt] for s in streams], text, utt)
    return res


def table(rows: list[str]) -> str:
    head = "| system | " + " | ".join(CONDITIONS) + " |\n|---|" + "---:|" * len(CONDITIONS) + "\n"
    lines = []
    for row in rows:
        name, sep, base = row.partition("=")
        if not sep:
            raise CSSEvalError(f"--table entries are NAME=DIR, got {row!r}")
        cells = []
        for c in CONDITIONS:
            f = Path(base) / c / "result.json"
            cells.append(f"{json.loads(f.read_text())['wer']:.1f}" if f.is_file() else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "# LibriCSS utterance-wise WER (%)\n\n" + head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", help="reference Kaldi text")
    p.add_argument("--hyp", nargs="+", help="one Kaldi text per stream")
    p.add_argument("--table", nargs="+", metavar="NAME=DIR", help="tabulate DIR/<condition>/result.json")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    setup_logging()
    try:
        if args.table:
            atomic_write_text(args.out, table(args.table))
            return 0
        if not args.ref or not args.hyp:
            p.error("give --ref and --hyp, or --table")
        res = score(args.ref, args.hyp)
        out = Path(args.out)
        data = {"wer": res.wer, "errors": res.errors, "n_ref_words": res.n_ref, "n_utts": len(res.choices),
                "stream_counts": res.stream_counts(), "ref": args.ref, "hyp": args.hyp}
        atomic_write_text(out / "result.json", json.dumps(data, indent=1) + "\n")
        print(res.summary())
    except (CSSEvalError, WerError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
