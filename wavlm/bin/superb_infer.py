"""Evaluate a SUPERB checkpoint (wavlm.bin.train_superb) on a data dir: one utterance at a time, whole (s3prl's
evaluation batch size 1), on a GPU when there is one.

    python -m wavlm.bin.superb_infer --checkpoint exp/wavlm_base/pr/checkpoint_best.pt --data data/pr/test_clean \\
        --out exp/wavlm_base/pr/test_clean --tag wavlm_base
    python -m wavlm.bin.superb_infer --checkpoint exp/wavlm_base/asv/checkpoint_best.pt --data data/vox1_test \\
        --trials data/trials/vox1_O --out exp/wavlm_base/asv/vox1_O --tag wavlm_base

pr, asr: OUT/hyp (`utt units...`: phones or words, greedy CTC), scored against DATA/text: PER / WER in %; the CTC
         log posteriors go to OUT/logprobs, a log-prob dir the decoders of wavlm.bin.asr_decode read (e.g. the
         lexicon beam search with a word 4-gram: ASR with an LM).
sid:     OUT/hyp (`utt speaker`), accuracy in % against DATA/utt2spk.
asv:     OUT/emb.{ark,scp} (x-vector embeddings), cosine scores of --trials in OUT/scores, EER in %.
Every task writes OUT/result.json: {"task", "metric", "value", "set", "upstream", "tag", "checkpoint", ...}; the
table of wavlm.bin.superb_table is made from these files. --upstream replaces the upstream path stored in the
checkpoint (when the model moved).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wavlm.bin import run_main
from wavlm.data.audio import AudioError, read_utterance
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.decode.logprobs import NAME, write_info, write_units
from wavlm.features.dump import default_device
from wavlm.features.shards import ark_scp_writer, model_stamp
from wavlm.metrics.sv import SvError, cosine_scores, eer, min_dcf, read_embeddings, read_trials
from wavlm.metrics.wer import WerError, score
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.ctc import ctc_greedy
from wavlm.tasks.superb import load_superb

log = logging.getLogger(__name__)
METRIC = {"pr": "per", "asr": "wer", "sid": "acc", "asv": "eer"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.superb_infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint of wavlm.bin.train_superb")
    p.add_argument("--data", required=True, help="Kaldi data dir to evaluate")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--trials", default="", help="asv: Kaldi trial list `enroll test target|nontarget`")
    p.add_argument("--tag", default="", help="the upstream's name in the results table (default: its file name)")
    p.add_argument("--upstream", default="", help="upstream path replacing the one stored in the checkpoint")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (AudioError, DataDirError, CheckpointError, SvError,
                                                         WerError, ValueError))


@torch.no_grad()
def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise DataDirError(f"{args.data}: no utterances")
    device = torch.device(args.device or default_device())
    sb = load_superb(args.checkpoint, args.upstream, device)
    if sb.task == "asv" and not args.trials:
        raise ValueError(f"{args.checkpoint} is an ASV model: give --trials (a Kaldi trial list)")
    model = sb.model
    hyps: dict[str, str] = {}
    out.mkdir(parents=True, exist_ok=True)
    lp_dir = out / "logprobs"
    num_frames: dict[str, int] = {}
    if sb.task in ("pr", "asr"):
        lp_dir.mkdir(exist_ok=True)
        writer = ark_scp_writer(lp_dir / f"{NAME}.ark", lp_dir / f"{NAME}.scp")
    elif sb.task == "asv":
        writer = ark_scp_writer(out / "emb.ark", out / "emb.scp")
    else:
        writer = contextlib.nullcontext(None)
    with writer as put:
        for u in tqdm(utts, desc=f"{sb.task} {data.path.name}", mininterval=10):
            wav = torch.from_numpy(read_utterance(data, u)).to(device)[None]
            x, frames = model.features(wav)
            head = model.head
            if sb.task in ("pr", "asr"):
                assert sb.tokenizer is not None
                lp = head.log_probs(x, frames)
                hyps[u] = sb.tokenizer.decode(ctc_greedy(lp, frames)[0])
                put(u, lp[0].float().cpu().numpy())
                num_frames[u] = lp.shape[1]
            elif sb.task == "sid":
                hyps[u] = sb.labels[int(head.logits(x, frames).argmax(-1)[0])]
            else:
                put(u, head.embed(x, frames)[0].float().cpu().numpy())
    if num_frames and sb.tokenizer is not None:
        atomic_write_text(lp_dir / "utt2num_frames", "".join(f"{u} {num_frames[u]}\n" for u in utts))
        write_units(lp_dir, sb.tokenizer)
        write_info(lp_dir, {"model": str(Path(args.checkpoint).resolve()), "model_stamp": model_stamp(args.checkpoint),
                            "data": str(data.path.resolve()), "frame_rate": 16000 / model.upstream.frame_shift,
                            "vocab_size": len(sb.tokenizer), "blank": sb.tokenizer.blank, "eos": sb.tokenizer.eos,
                            "num_utts": len(utts)})
    result: dict = {"task": sb.task, "metric": METRIC[sb.task],
                    "set": Path(args.trials).name if sb.task == "asv" else data.path.name,
                    "upstream": args.upstream or model.upstream.spec,
                    "tag": args.tag or Path(args.upstream or model.upstream.spec).name,
                    "checkpoint": str(Path(args.checkpoint).resolve()), "utterances": len(utts),
                    "layer_weights": [round(w, 6) for w in sb.layer_weights]}
    if sb.task in ("pr", "asr"):
        atomic_write_text(out / "hyp", "".join(f"{u} {hyps[u]}\n" for u in utts))
        r = score(data.text(), hyps, ref_name=str(data.path / "text"), hyp_name=str(out / "hyp"))
        result.update(value=round(r.wer, 4), errors=r.errors, ref_tokens=r.n_ref_words)
    elif sb.task == "sid":
        atomic_write_text(out / "hyp", "".join(f"{u} {hyps[u]}\n" for u in utts))
        ref = data.utt2spk()
        correct = sum(hyps[u] == ref[u] for u in utts)
        result.update(value=round(100.0 * correct / len(utts), 4), correct=correct)
    else:
        trials = read_trials(args.trials)
        scores = cosine_scores(read_embeddings(out / "emb.scp"), trials)
        atomic_write_text(out / "scores", "".join(f"{e} {t} {s!r}\n" for e, t, s in
                                                  zip(trials.enroll, trials.test, scores.tolist(), strict=True)))
        value, threshold = eer(scores, trials.labels)
        result.update(value=round(value, 4), threshold=threshold, trials=str(args.trials),
                      mindcf_0_01=round(min_dcf(scores, trials.labels, 0.01)[0], 4),
                      n_target=int(np.sum(trials.labels)), n_nontarget=int(np.sum(~trials.labels)))
    atomic_write_text(out / "result.json", json.dumps(result, indent=1) + "\n")
    log.info("%s %s on %s: %s %.2f%%", result["tag"], sb.task, result["set"], result["metric"], result["value"])
    print(f"{result['tag']} {sb.task} {result['set']} {result['metric'].upper()} {result['value']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
