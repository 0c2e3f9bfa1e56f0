"""Decode a data dir with a fine-tuned CTC model: greedy (best path) or beam search with CTC prefix
scores plus an optional LM (espnet's BatchBeamSearch with CTCPrefixScorer and shallow fusion).

    python -m wavlm.bin.asr_decode --model exp/asr/checkpoint_best.pt --data data/test_clean \\
        --out exp/asr/decode_test_clean_greedy --nj 8 --job 3                   # one job ($cmd JOB=1:8)
    python -m wavlm.bin.asr_decode ... --nj 8 --merge                            # merge the jobs
    python -m wavlm.bin.asr_decode ... --beam_size 20 --lm exp/lm/checkpoint_best.pt --lm_weight 0.5

Job K writes OUT/text.K.txt (`utt WORDS ...`); the merge writes OUT/text sorted by utterance. A job that
is done with the same model, data and options is skipped.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from wavlm.bin import setup_logging
from wavlm.data.audio import AudioError, read_utterance
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.features.shards import ShardError, Shards, add_shard_args, model_stamp
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.ctc import CTCBeamSearch, ctc_greedy
from wavlm.tasks.asr import load_asr_model
from wavlm.tasks.lm import load_lm

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="ASR checkpoint (wavlm.bin.train_asr)")
    p.add_argument("--data", required=True, help="Kaldi data dir")
    p.add_argument("--out", required=True, help="decode dir")
    add_shard_args(p)
    p.add_argument("--beam_size", type=int, default=1, help="1: greedy CTC; >1: prefix beam search")
    p.add_argument("--lm", default="", help="LM checkpoint (wavlm.bin.train_lm) for shallow fusion")
    p.add_argument("--lm_weight", type=float, default=0.5)
    p.add_argument("--length_bonus", type=float, default=0.0, help="score added per output token")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


class Decoder:
    """Greedy or beam-search decoding of one utterance at a time (beam search is per utterance)."""

    def __init__(self, args: argparse.Namespace):
        self.model, self.tok = load_asr_model(args.model, args.device)
        self.device = torch.device(args.device)
        self.beam = None
        if args.beam_size > 1:
            lm = load_lm(args.lm, self.tok.tokens, args.device) if args.lm else None
            self.beam = CTCBeamSearch(self.model.ctc, len(self.tok), self.tok.eos, args.beam_size, lm, args.lm_weight,
                                      args.length_bonus)
        elif args.lm:
            raise ValueError("--lm needs --beam_size > 1")

    @torch.no_grad()
    def __call__(self, wav) -> str:  # noqa: ANN001
        x = torch.from_numpy(wav).to(self.device)[None]
        if self.beam is None:
            logp, lens = self.model.log_probs(x)
            return self.tok.decode(ctc_greedy(logp, lens)[0])
        return self.tok.decode(self.beam(self.model.encode(x, None).hidden[0]))


def quiet_espnet(record: logging.LogRecord) -> bool:
    """espnet's beam search logs several INFO lines per utterance through the root logger: keep its warnings."""
    return record.levelno >= logging.WARNING or "espnet" not in record.pathname


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    for handler in logging.getLogger().handlers:  # not the root level: our own INFO lines stay
        handler.addFilter(quiet_espnet)
    try:
        run(args)
    except (AudioError, DataDirError, CheckpointError, ShardError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise DataDirError(f"{args.data}: no utterances")
    config = {"model": str(Path(args.model).resolve()), "model_stamp": model_stamp(args.model),
              "beam_size": args.beam_size, "lm": str(Path(args.lm).resolve()) if args.lm else "",
              "lm_stamp": model_stamp(args.lm) if args.lm else [], "lm_weight": args.lm_weight,
              "length_bonus": args.length_bonus}
    shards = Shards(args.out, "text", args.nj, config)
    state: dict[str, Decoder] = {}

    def process(part: list[str], job: int) -> dict:
        if "d" not in state:
            state["d"] = Decoder(args)
        lines = []
        for utt in tqdm(part, desc=f"decode job {job}", mininterval=10):
            lines.append(f"{utt} {state['d'](read_utterance(data, utt))}".rstrip() + "\n")
        atomic_write_text(shards.path(job, "txt"), "".join(lines))
        return {"num_utts": len(part)}

    def merge() -> None:
        shards.merge_text("txt", "text", expect=utts)

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
