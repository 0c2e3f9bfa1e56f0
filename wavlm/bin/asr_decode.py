"""Decode CTC log posteriors into text: greedy (best path) or prefix beam search with CTC prefix scores plus
an optional token LM (espnet's BatchBeamSearch with CTCPrefixScorer and shallow fusion).

The main path decodes the log posteriors `wavlm.bin.ctc_logprobs` stored once per data set (the encoder ran
batched, on a GPU if there was one); every decoding job is a single-threaded CPU process:

    python -m wavlm.bin.asr_decode --logprobs exp/asr/logprobs/test_clean --out exp/asr/decode_greedy/test_clean \\
        --nj 8 --job 3 --num_threads 1                                        # one job ($cmd JOB=1:8)
    python -m wavlm.bin.asr_decode --logprobs ... --out ... --nj 8 --merge     # merge the jobs
    python -m wavlm.bin.asr_decode --logprobs ... --beam_size 20 --lm exp/lm/checkpoint_best.pt --lm_weight 0.5
    python -m wavlm.bin.asr_decode --logprobs ... --decoder lexicon --beam_size 500 --lexicon lexicon.txt \
        --kenlm 4-gram.arpa.gz --kenlm_weight 2 --word_score -1 [--word_lm exp/lm_word/checkpoint_best.pt --nbest 50]

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
from wavlm.decode.decoders import BeamSearchDecoder, CtcDecoder, GreedyDecoder, LexiconDecoder
from wavlm.decode.flashlight import DEFAULTS, DecoderError
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
    p.add_argument("--decoder", choices=("auto", "greedy", "beam", "lexicon"), default="auto",
                   help="greedy; beam: espnet prefix beam search with a token LM; lexicon: flashlight beam search "
                        "with a lexicon and a word n-gram; auto: greedy when --beam_size is 1, else beam")
    p.add_argument("--beam_size", type=int, default=1, help="1: greedy CTC; >1: prefix beam search")
    p.add_argument("--lm", default="", help="beam: token LM checkpoint (wavlm.bin.train_lm) for shallow fusion")
    p.add_argument("--lm_weight", type=float, default=0.5, help="beam: weight of the token LM")
    p.add_argument("--length_bonus", type=float, default=0.0, help="beam: score added per output token")
    lex = DEFAULTS  # fairseq's decoding defaults (wavlm.decode.flashlight names the files)
    p.add_argument("--lexicon", default="", help="lexicon: `WORD L E T T E R S` file; empty: lexicon-free")
    p.add_argument("--kenlm", default="", help="lexicon: word n-gram, ARPA (.gz) or KenLM binary; empty: none")
    p.add_argument("--kenlm_weight", type=float, default=lex["lm_weight"], help="lexicon: n-gram weight")
    p.add_argument("--word_score", type=float, default=lex["word_score"], help="lexicon: score per word")
    p.add_argument("--beam_threshold", type=float, default=lex["beam_threshold"], help="lexicon: beam pruning")
    p.add_argument("--unk_score", type=float, default=lex["unk_score"], help="lexicon: score of <unk> words")
    p.add_argument("--sil_score", type=float, default=lex["sil_score"], help="lexicon: score per word boundary")
    p.add_argument("--nbest", type=int, default=1, help="lexicon: hypotheses kept (for --word_lm rescoring)")
    p.add_argument("--word_lm", default="", help="lexicon: word Transformer LM (train_lm, data.units=word) "
                                                 "rescoring the N-best")
    p.add_argument("--word_lm_weight", type=float, default=lex["lm_weight"], help="lexicon: word LM weight")
    p.add_argument("--word_lm_word_score", type=float, default=lex["word_score"],
                   help="lexicon: score per word with --word_lm")
    p.add_argument("--device", default="cpu", help="with --model: where the encoder runs")
    p.add_argument("--batch_seconds", type=float, default=100.0, help="with --model: audio per padded batch")
    p.add_argument("--num_threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


# ---- decoders: one function builds them, one says which options they depend on ----------------------------
# A new decoder (e.g. a lexicon beam search with a word n-gram) is a class with the CtcDecoder interface
# (wavlm/decode/decoders.py), its options in get_parser, a branch here and its options in decoder_config.


def decoder_kind(args: argparse.Namespace) -> str:
    if args.decoder != "auto":
        return args.decoder
    return "greedy" if args.beam_size == 1 else "beam"


def build_decoder(args: argparse.Namespace, tok: Tokenizer, word_lm: object | None = None) -> CtcDecoder:
    """The decoder the options ask for; `word_lm` (wavlm.decode.rescore.WordLM) when already loaded."""
    kind = decoder_kind(args)
    if kind == "lexicon":
        if args.word_lm and word_lm is None:
            from wavlm.decode.rescore import load_word_lm

            word_lm = load_word_lm(args.word_lm)
        return LexiconDecoder(tok, args.lexicon or None, args.kenlm or None, args.beam_size, args.beam_threshold,
                              args.kenlm_weight, args.word_score, args.unk_score, args.sil_score, args.nbest,
                              word_lm, args.word_lm_weight, args.word_lm_word_score)
    if kind == "beam":
        lm = load_lm(args.lm, tok.tokens) if args.lm else None
        return BeamSearchDecoder(tok, args.beam_size, lm, args.lm_weight, args.length_bonus)
    return GreedyDecoder(tok)


def _file(path: str) -> dict:
    return {"path": str(Path(path).resolve()), "stamp": model_stamp(path)} if path else {}


def decoder_config(args: argparse.Namespace) -> dict:
    """The options the decoder's output depends on (the jobs' config stamp); wrong combinations are errors."""
    if args.beam_size < 1:
        raise ValueError(f"--beam_size must be >= 1, got {args.beam_size}")
    kind = decoder_kind(args)
    lexicon_opts = [o for o in ("lexicon", "kenlm", "word_lm") if getattr(args, o)]
    if kind != "lexicon" and lexicon_opts:
        raise ValueError(f"--{lexicon_opts[0]} is an option of --decoder lexicon")
    if kind == "greedy":
        if args.lm:
            raise ValueError("--lm needs --beam_size > 1")
        return {"decoder": "greedy"}
    if kind == "beam":
        return {"decoder": "beam", "beam_size": args.beam_size, "lm": str(Path(args.lm).resolve()) if args.lm else "",
                "lm_stamp": model_stamp(args.lm) if args.lm else [], "lm_weight": args.lm_weight,
                "length_bonus": args.length_bonus}
    if args.lm:
        raise ValueError("--lm is the token LM of --decoder beam; the lexicon decoder takes --kenlm and --word_lm")
    for opt in ("lexicon", "kenlm"):
        if getattr(args, opt) and not Path(getattr(args, opt)).is_file():
            raise ValueError(f"--{opt} {getattr(args, opt)}: no such file")
    if args.word_lm and args.nbest < 2:
        raise ValueError("--word_lm rescores the N-best list: give --nbest > 1 (e.g. 50)")
    config = {"decoder": "lexicon", "lexicon": _file(args.lexicon), "kenlm": _file(args.kenlm),
              "word_lm": _file(args.word_lm)}
    for opt in ("beam_size", "beam_threshold", "kenlm_weight", "word_score", "unk_score", "sil_score", "nbest"):
        config[opt] = getattr(args, opt)
    if args.word_lm:
        config.update(word_lm_weight=args.word_lm_weight, word_lm_word_score=args.word_lm_word_score)
    return config


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
    except (AudioError, DataDirError, CheckpointError, ShardError, LogProbsError, DecoderError, ValueError) as e:
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
            try:
                hyps[utt] = decoder(lp)
            except DecoderError as e:
                raise DecoderError(f"utterance {utt}: {e}") from None
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
