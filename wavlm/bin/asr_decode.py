"""Decode CTC log posteriors into text: greedy (best path) or prefix beam search with CTC prefix scores plus
an optional token LM (espnet's BatchBeamSearch with CTCPrefixScorer and shallow fusion).

The main path decodes the log posteriors `wavlm.bin.ctc_logprobs` stored once per data set (the encoder ran
batched, on a GPU if there was one); every decoding job is a single-threaded CPU process:

    python -m wavlm.bin.asr_decode --logprobs exp/asr/logprobs/test_clean --out exp/asr/decode_greedy/test_clean \\
        --nj 8 --job 3 --num_threads 1                                        # one job ($cmd JOB=1:8)
    python -m wavlm.bin.asr_decode --logprobs ... --out ... --nj 8 --merge     # merge the jobs
    python -m wavlm.bin.asr_decode --logprobs ... --beam_size 20 --lm exp/lm/checkpoint_best.pt --lm_weight 0.5

Without a stored dump, `--model CKPT --data DIR` computes the log posteriors in the job itself (the same
batched pass, `--device`, `--batch_seconds`) and decodes them (e.g. the streams of egs/libricss/css1).

Job K writes OUT/text.K.txt (`utt WORDS ...`) and OUT/text.K.json (utterances, audio seconds, decoding
seconds and real-time factor); the merge writes OUT/text sorted by utterance. A job that is done with the
same log posteriors (or model), data and decoding options is skipped.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wavlm.bin import setup_logging
from wavlm.data.audio import AudioError
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.data.tokenizer import Tokenizer
from wavlm.decode.decoders import BeamSearchDecoder, CtcDecoder, GreedyDecoder
from wavlm.decode.logprobs import LogProbsDir, LogProbsError, batched_log_probs
from wavlm.features.shards import ShardError, Shards, add_shard_args, model_stamp
from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.asr import load_asr_model
from wavlm.tasks.lm import load_lm

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.asr_decode", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--logprobs", default="", help="log-prob dir of wavlm.bin.ctc_logprobs (merged)")
    p.add_argument("--model", default="", help="instead of --logprobs: ASR checkpoint (wavlm.bin.train_asr) ...")
    p.add_argument("--data", default="", help="... and the Kaldi data dir to run it on")
    p.add_argument("--out", required=True, help="decode dir")
    add_shard_args(p)
    p.add_argument("--beam_size", type=int, default=1, help="1: greedy CTC; >1: prefix beam search")
    p.add_argument("--lm", default="", help="LM checkpoint (wavlm.bin.train_lm) for shallow fusion")
    p.add_argument("--lm_weight", type=float, default=0.5)
    p.add_argument("--length_bonus", type=float, default=0.0, help="score added per output token")
    p.add_argument("--device", default="cpu", help="with --model: where the encoder runs")
    p.add_argument("--batch_seconds", type=float, default=100.0, help="with --model: audio per padded batch")
    p.add_argument("--num_threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


# ---- decoders: one function builds them, one says which options they depend on ----------------------------
# A new decoder (e.g. a lexicon beam search with a word n-gram) is a class with the CtcDecoder interface
# (wavlm/decode/decoders.py), its options in get_parser, a branch here and its options in decoder_config.


def build_decoder(args: argparse.Namespace, tok: Tokenizer) -> CtcDecoder:
    if args.beam_size > 1:
        lm = load_lm(args.lm, tok.tokens) if args.lm else None
        return BeamSearchDecoder(tok, args.beam_size, lm, args.lm_weight, args.length_bonus)
    return GreedyDecoder(tok)


def decoder_config(args: argparse.Namespace) -> dict:
    """The options the decoder's output depends on (the jobs' config stamp)."""
    if args.beam_size < 1:
        raise ValueError(f"--beam_size must be >= 1, got {args.beam_size}")
    if args.beam_size == 1:
        if args.lm:
            raise ValueError("--lm needs --beam_size > 1")
        return {"decoder": "greedy"}
    return {"decoder": "beam", "beam_size": args.beam_size, "lm": str(Path(args.lm).resolve()) if args.lm else "",
            "lm_stamp": model_stamp(args.lm) if args.lm else [], "lm_weight": args.lm_weight,
            "length_bonus": args.length_bonus}


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
    except (AudioError, DataDirError, CheckpointError, ShardError, LogProbsError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


def run(args: argparse.Namespace) -> None:
    if bool(args.logprobs) == bool(args.model or args.data) or bool(args.model) != bool(args.data):
        raise ValueError("give either --logprobs DIR, or --model CKPT with --data DIR")
    config = decoder_config(args)
    if args.logprobs:
        dump = LogProbsDir(args.logprobs)
        utts, source = dump.utts(), dump.source()
    else:
        data = DataDir(args.data)
        utts = data.utt_ids()
        source = {"model": str(Path(args.model).resolve()), "model_stamp": model_stamp(args.model)}
    if not utts:
        raise DataDirError(f"{args.logprobs or args.data}: no utterances")
    shards = Shards(args.out, "text", args.nj, {"source": source, **config})

    def log_probs(part: list[str], job: int) -> tuple[Iterable[tuple[str, np.ndarray]], Tokenizer, float]:
        """(utt, [T, V]) of the job's utterances, the tokenizer of their units and their frame rate."""
        if args.logprobs:
            return dump.items(part), dump.tokenizer, dump.frame_rate
        model, tok = load_asr_model(args.model, args.device)
        items = batched_log_probs(model, data, part, args.device, args.batch_seconds, desc=f"log-probs job {job}")
        return items, tok, 16000 / model.wavlm.frame_shift

    def process(part: list[str], job: int) -> dict:
        start = time.perf_counter()
        items, tok, frame_rate = log_probs(part, job)
        decoder = build_decoder(args, tok)
        hyps: dict[str, str] = {}
        frames = 0
        for utt, lp in tqdm(items, total=len(part), desc=f"decode job {job}", mininterval=10):
            hyps[utt] = decoder(lp)
            frames += lp.shape[0]
        atomic_write_text(shards.path(job, "txt"), "".join(f"{u} {hyps[u]}".rstrip() + "\n" for u in part))
        seconds = time.perf_counter() - start
        audio = frames / frame_rate
        logger.info("job %d: %d utterances, %.1f s of audio in %.1f s (real-time factor %.4f%s)", job, len(part),
                    audio, seconds, seconds / max(audio, 1e-9), ", encoder included" if args.model else "")
        return {"num_utts": len(part), "audio_seconds": round(audio, 3), "seconds": round(seconds, 3),
                "rtf": round(seconds / max(audio, 1e-9), 5), "encoder_included": bool(args.model)}

    def merge() -> None:
        shards.merge_text("txt", "text", expect=utts)

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
