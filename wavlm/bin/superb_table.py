"""Gather SUPERB results (the result.json files of wavlm.bin.superb_infer, and of the diarization recipe when it
exists) into the WavLM paper's SUPERB table, with the paper's rows beside ours.

    python -m wavlm.bin.superb_table egs/librispeech/superb1/exp egs/voxceleb/superb1/exp --out SUPERB.md

Arguments are result.json files or directories searched for them. One row per upstream tag (`tag` in the
result); columns PR (PER %), ASR (WER %), SID (accuracy %), ASV (EER %), SD (DER %); "not run" where there is no
number. When a tag has several results for one task, the one on a set whose name holds `test` is shown (else the last by
path); every result is listed under the table with its set and file.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wavlm.bin import run_main
from wavlm.data.datadir import atomic_write_text

log = logging.getLogger(__name__)

COLUMNS = [("pr", "PR PER↓"), ("asr", "ASR WER↓"), ("sid", "SID Acc↑"), ("asv", "ASV EER↓"), ("sd", "SD DER↓")]

# The WavLM paper (Chen et al., arXiv 2110.13900, Table I "Universal speech representation evaluation on SUPERB"),
# as released in microsoft/unilm wavlm/README.md (an image there). The search tool could not read that table: only
# WavLM Base's PR 4.84 is confirmed by a text source (s3prl/s3prl issue #498, "the reported PER is 4.84"); the
# other values are transcribed from the paper by hand and unverified here.
PAPER = {
    "paper: wav2vec 2.0 Base": {"pr": 5.74, "asr": 6.43, "sid": 75.18, "asv": 6.02, "sd": 6.08},
    "paper: HuBERT Base": {"pr": 5.41, "asr": 6.42, "sid": 81.42, "asv": 5.11, "sd": 5.88},
    "paper: WavLM Base": {"pr": 4.84, "asr": 6.21, "sid": 84.51, "asv": 4.69, "sd": 4.55},
    "paper: WavLM Base+": {"pr": 3.92, "asr": 5.59, "sid": 89.42, "asv": 4.07, "sd": 3.50},
    "paper: wav2vec 2.0 Large": {"pr": 4.75, "asr": 3.75, "sid": 86.14, "asv": 5.65, "sd": 5.62},
    "paper: HuBERT Large": {"pr": 3.53, "asr": 3.62, "sid": 90.33, "asv": 5.98, "sd": 5.75},
    "paper: WavLM Large": {"pr": 3.06, "asr": 3.44, "sid": 95.49, "asv": 3.77, "sd": 3.24},
}


def find_results(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(p.rglob("result.json"))
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return found


def read_result(path: Path) -> dict:
    try:
        r = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not JSON: {e}") from None
    missing = [k for k in ("task", "value", "tag") if k not in r]
    if missing:
        raise ValueError(f"{path}: not a SUPERB result (no {', '.join(missing)})")
    return r


def table(results: list[tuple[Path, dict]]) -> str:
    chosen: dict[str, dict[str, tuple[Path, dict]]] = {}
    for path, r in sorted(results, key=lambda x: ("test" in str(x[1].get("set", "")), str(x[0]))):
        chosen.setdefault(r["tag"], {})[r["task"]] = (path, r)
    head = "| upstream | " + " | ".join(name for _, name in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for tag in sorted(chosen):
        cells = [f"{chosen[tag][t][1]['value']:.2f}" if t in chosen[tag] else "not run" for t, _ in COLUMNS]
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    for name, row in PAPER.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[t]:.2f}" for t, _ in COLUMNS) + " |")
    lines += ["", "Results shown (tag, task, set, file):", ""]
    for tag in sorted(chosen):
        for t, _ in COLUMNS:
            if t in chosen[tag]:
                path, r = chosen[tag][t]
                lines.append(f"- {tag} {t} {r.get('set', '?')}: {r['value']:.2f} ({path})")
    return "\n".join(lines) + "\n"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.superb_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="result.json files or directories holding them")
    p.add_argument("--out", default="", help="write the markdown table here too")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def run(args: argparse.Namespace) -> None:
    results = [(p, read_result(p)) for p in find_results(args.paths)]
    if not results:
        log.warning("no result.json under %s", " ".join(args.paths))
    text = table(results)
    if args.out:
        atomic_write_text(args.out, text)
    print(text, end="")


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
