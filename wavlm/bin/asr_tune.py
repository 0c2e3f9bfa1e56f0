"""Tune decoding weights on a dev set: decode its stored CTC log posteriors at every point of a grid, score
each by WER against the dev transcripts, write the grid's table and the best point (then decode the test sets
with `wavlm.bin.asr_decode ... $(python -m wavlm.bin.asr_tune --out OUT --print_best)`).

    python -m wavlm.bin.asr_tune --logprobs exp/asr/logprobs/dev_other --ref data/dev_other/text \\
        --out exp/asr/tune_4gram/dev_other --decoder lexicon --beam_size 500 --lexicon lexicon.txt \\
        --kenlm 4-gram.arpa.gz --grid "kenlm_weight=0,1,2,3 word_score=-2,-1,0,1" --nj 8
    python -m wavlm.bin.asr_tune ... --word_lm exp/lm_word/checkpoint_best.pt --nbest 50 \\
        --kenlm_weight 2 --word_score -1 --grid "word_lm_weight=0,1,2 word_lm_word_score=-1,0,1"

Every other option is asr_decode's. The dev set is split over --nj worker processes; each builds its decoder
once and, for a grid over kenlm_weight/word_score, re-weights it per point (the LM and the lexicon stay
loaded). A grid over only word_lm_weight/word_lm_word_score decodes the N-best lists once and rescores them
per point. Points already scored with the same inputs are not decoded again.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import multiprocessing
import sys
from pathlib import Path

from wavlm.bin import setup_logging
from wavlm.bin.asr_decode import build_decoder, decoder_config, decoder_kind, get_parser
from wavlm.data.datadir import DataDirError
from wavlm.decode.logprobs import LogProbsDir, LogProbsError
from wavlm.decode.tune import TuneError, parse_grid, pending, point_name, tune
from wavlm.metrics.wer import WerError, read_text

logger = logging.getLogger(__name__)

REWEIGHT = ("kenlm_weight", "word_score")  # the lexicon decoder changes these without reloading
RESCORE = ("word_lm_weight", "word_lm_word_score")  # these only re-rank the N-best lists


def parser() -> argparse.ArgumentParser:
    p = get_parser()
    p.prog, p.description = "python -m wavlm.bin.asr_tune", __doc__
    p.add_argument("--ref", default="", help="reference transcripts of the dev set (Kaldi text)")
    p.add_argument("--grid", default="", help='"OPTION=V1,V2,... OPTION=..." over asr_decode options')
    p.add_argument("--print_best", action="store_true",
                   help="print the best point of the finished tuning in --out as asr_decode options, and exit")
    return p


def best_options(out: str) -> str:
    f = Path(out) / "best.json"
    if not f.is_file():
        raise TuneError(f"{f}: no tuning result (run asr_tune first)")
    return " ".join(f"--{k} {v:g}" for k, v in json.loads(f.read_text())["options"].items())


def _apply(args: argparse.Namespace, point: dict[str, float]) -> argparse.Namespace:
    a = copy.copy(args)
    for k, v in point.items():
        setattr(a, k, v)
    return a


_STATE: dict = {}


def _work(job: tuple[list[str], list[dict[str, float]], bool]) -> list:
    """One worker's utterances at every point: {point name: {utt: text}}, or N-best lists with `nbest`."""
    utts, points, nbest = job
    args, dump = _STATE["args"], _STATE["dump"]
    items = list(dump.items(utts))
    if nbest:  # first pass once: the lexicon decoder's raw N-best
        search = build_decoder(_apply(args, {"word_lm": ""}), dump.tokenizer).search
        return [(u, [(h.words, h.score, h.lm_score) for h in search(lp)]) for u, lp in items]
    reweight = decoder_kind(args) == "lexicon" and set(points[0]) <= set(REWEIGHT)
    decoder = build_decoder(_apply(args, points[0]), dump.tokenizer)
    out = []
    for p in points:
        a = _apply(args, p)
        if reweight:
            decoder.reweight(a.kenlm_weight, a.word_score)
        elif p is not points[0]:
            decoder = build_decoder(a, dump.tokenizer)
        out.append({u: decoder(lp) for u, lp in items})
    return out


def run(args: argparse.Namespace) -> None:
    if not (args.logprobs and args.ref and args.grid):
        raise ValueError("give --logprobs, --ref, --out and --grid")
    points = parse_grid(args.grid)
    unknown = sorted(set(points[0]) - set(vars(args)))
    if unknown:
        raise TuneError(f"--grid names {unknown}, which are not asr_decode options")
    rescoring = set(points[0]) <= set(RESCORE)
    if rescoring and not args.word_lm:
        raise TuneError(f"a grid over {sorted(points[0])} needs --word_lm")
    dump, refs = LogProbsDir(args.logprobs), read_text(args.ref)
    stamp = {"source": dump.source(), "ref": str(Path(args.ref).resolve()),
             **decoder_config(_apply(args, {k: 0.0 for k in points[0]}))}
    for k in points[0]:
        stamp.pop(k, None)
    todo = pending(points, args.out, stamp)
    utts = dump.utts()
    missing = sorted(set(refs) - set(utts))
    if missing:
        raise TuneError(f"{args.ref}: {len(missing)} utterances have no log posteriors in {args.logprobs}, "
                        f"e.g. {missing[0]}")
    hyps: dict[str, dict[str, str]] = {}
    if todo:
        n = max(1, min(args.nj, len(utts)))
        parts = [utts[i::n] for i in range(n)]
        _STATE.update(args=args, dump=dump)
        logger.info("decoding %d utterances at %d grid points in %d processes", len(utts), len(todo), n)
        with multiprocessing.get_context("fork").Pool(n) as pool:
            results = pool.map(_work, [(part, todo, rescoring) for part in parts])
        if rescoring:
            from wavlm.decode.rescore import load_word_lm, nbest_logprobs, rescored_scores

            nbests = {u: nb for r in results for u, nb in r}
            lm_lp = nbest_logprobs(nbests, load_word_lm(args.word_lm, args.device))
            for p in todo:
                a = _apply(args, p)
                hyps[point_name(p)] = {}
                for u, nb in nbests.items():
                    if not nb:
                        hyps[point_name(p)][u] = ""
                        continue
                    s = rescored_scores(nb, lm_lp[u], a.word_lm_weight, a.word_lm_word_score, a.kenlm_weight,
                                        a.word_score)
                    hyps[point_name(p)][u] = " ".join(nb[int(s.argmax())][0])
        else:
            for i, p in enumerate(todo):
                hyps[point_name(p)] = {u: t for r in results for u, t in r[i].items()}
    tune(points, lambda p: hyps[point_name(p)], refs, args.out, stamp)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if args.print_best:
            print(best_options(args.out))
            return 0
        run(args)
    except (DataDirError, LogProbsError, TuneError, WerError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
