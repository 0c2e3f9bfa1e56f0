"""Compute the CTC log posteriors of a data dir once, batched (on a GPU when there is one), and store them for
the decoders (`wavlm.bin.asr_decode --logprobs`, LM-weight tuning), which then run on CPUs in parallel jobs.

    python -m wavlm.bin.ctc_logprobs --model exp/asr/checkpoint_best.pt --data data/test_clean \\
        --out exp/asr/logprobs/test_clean --nj 2 --job 1            # one job (as $cmd --gpu 1 JOB=1:2 runs it)
    python -m wavlm.bin.ctc_logprobs ... --nj 2 --merge             # merge the jobs; write the units and info
    python -m wavlm.bin.ctc_logprobs ... --nj 2                     # all jobs in this process, then merge

Job K writes OUT/logprobs.K.{ark,scp} (float32 [T, V] log-softmax per utterance), OUT/logprobs.K.done and
OUT/logprobs.K.json (utterances, audio and padded seconds, wall time, real-time factor); a job done with the
same model and utterances is skipped. The merge writes OUT/logprobs.scp, OUT/utt2num_frames, the units
(OUT/tokens.txt, OUT/spm.model) and OUT/logprobs_info.json. See wavlm/decode/logprobs.py for the layout and
for how batching keeps each utterance's output equal to what it gives alone. GPU jobs: one job per GPU
(`$cmd --gpu 1 JOB=1:$ngpu`; the local launcher gives job K the GPU (K-1) mod the visible GPUs).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wavlm.bin import run_main
from wavlm.data.audio import AudioError
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.decode.logprobs import NAME, ComputeStats, batched_log_probs, write_info, write_units
from wavlm.features.dump import default_device
from wavlm.features.shards import ShardError, Shards, add_shard_args, ark_scp_writer, model_stamp
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.ctc import WavLMForCTC
from wavlm.tasks.asr import load_asr_model

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.ctc_logprobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="ASR checkpoint (wavlm.bin.train_asr)")
    p.add_argument("--data", required=True, help="Kaldi data dir (wav.scp, optional segments; utt2dur helps)")
    p.add_argument("--out", required=True, help="log-prob dir")
    add_shard_args(p)
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--batch_seconds", type=float, default=100.0,
                   help="audio per padded batch, padding included; 0: one utterance per batch (faster on CPUs)")
    p.add_argument("--num_workers", type=int, default=1, help="audio-reading processes (0: read in this one)")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (AudioError, DataDirError, CheckpointError, ShardError,
                                                         ValueError))


def run(args: argparse.Namespace) -> None:
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise DataDirError(f"{args.data}: no utterances")
    device = args.device or default_device()
    model_path = str(Path(args.model).resolve())
    stamp = model_stamp(args.model)
    # batching and device change nothing beyond float rounding, so they are not part of the stamp
    shards = Shards(args.out, NAME, args.nj, {"model": model_path, "model_stamp": stamp})

    models: dict[str, WavLMForCTC] = {}  # loaded once for all the jobs this process runs

    def process(part: list[str], job: int) -> dict:
        if not models:
            models["asr"] = load_asr_model(args.model, device)[0]
        model = models["asr"]
        stats = ComputeStats()
        frames: dict[str, int] = {}
        with ark_scp_writer(shards.path(job, "ark"), shards.path(job, "scp")) as put:
            for utt, lp in batched_log_probs(model, data, part, device, args.batch_seconds, args.num_workers,
                                             stats, desc=f"log-probs job {job}"):
                put(utt, lp)
                frames[utt] = lp.shape[0]
        atomic_write_text(shards.path(job, "utt2num_frames"), "".join(f"{u} {frames[u]}\n" for u in part))
        res = {**stats.as_dict(), "device": str(device), "batch_seconds": args.batch_seconds}
        logger.info("job %d: %d utterances, %.1f s of audio (%.1f s padded) in %.1f s on %s (real-time factor %.4f)",
                    job, res["num_utts"], res["audio_seconds"], res["padded_seconds"], res["compute_seconds"],
                    device, res["rtf"])
        return res

    def merge() -> None:
        shards.merge_text("scp", f"{NAME}.scp", expect=utts)
        shards.merge_text("utt2num_frames", "utt2num_frames", expect=utts)
        model, tok = load_asr_model(args.model, "cpu")
        write_units(args.out, tok)
        write_info(args.out, {"model": model_path, "model_stamp": stamp, "data": str(Path(args.data).resolve()),
                              "frame_rate": 16000 / model.wavlm.frame_shift, "vocab_size": len(tok), "blank": tok.blank,
                              "eos": tok.eos, "num_utts": len(utts)})

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
