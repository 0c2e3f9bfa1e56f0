"""Extract one speaker embedding per utterance (whole utterance, one at a time: the ECAPA convolutions and
the group-norm CNN of Base models would see padding in a padded batch) into kaldiio ark/scp.

    python -m wavlm.bin.sv_embed --model exp/sv_stage2/checkpoint_best.pt --data data/vox1_test \\
        --out exp/sv_stage2/emb/vox1_test --nj 8 --job 3            # one job ($cmd JOB=1:8)
    python -m wavlm.bin.sv_embed ... --nj 8 --merge                  # merge the jobs: OUT/emb.scp
    python -m wavlm.bin.sv_embed --model /models/wavlm-base-plus-sv ...   # a Hugging Face WavLMForXVector dir

Silent audio (all samples below 1e-6 in magnitude) gives no speaker information: it is an error naming the
utterance and its wav.scp line.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wavlm.bin import run_main
from wavlm.data.audio import AudioError, read_utterance
from wavlm.data.datadir import DataDir, DataDirError
from wavlm.features.shards import ShardError, Shards, add_shard_args, ark_scp_writer, model_stamp
from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.sv import frontend_input, load_sv_model

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="SV checkpoint (wavlm.bin.train_sv) or HF WavLMForXVector dir")
    p.add_argument("--data", required=True, help="Kaldi data dir")
    p.add_argument("--out", required=True, help="output dir (emb.scp)")
    add_shard_args(p)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=0)
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def embedder(path: str, device: str):
    """A function waveform [S] -> embedding [D] for our SV checkpoints or an HF x-vector dir."""
    if Path(path).is_dir():
        from wavlm.models.xvector import embed, load_xvector

        encoder, head = load_xvector(path)
        encoder, head = encoder.to(device).eval(), head.to(device).eval()
        return lambda wav: embed(encoder, head, torch.from_numpy(wav)[None].to(device), None)[0]
    model, frontend, bins = load_sv_model(path, device)
    return lambda wav: model(torch.from_numpy(frontend_input(wav, frontend, bins))[None].to(device))[0]


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (AudioError, DataDirError, CheckpointError, ShardError,
                                                         ValueError))


def run(args: argparse.Namespace) -> None:
    data = DataDir(args.data)
    utts = data.utt_ids()
    if not utts:
        raise DataDirError(f"{args.data}: no utterances")
    shards = Shards(args.out, "emb", args.nj, {"model": str(Path(args.model).resolve()),
                                               "model_stamp": model_stamp(args.model)})
    state: dict = {}

    def process(part: list[str], job: int) -> dict:
        if "f" not in state:
            state["f"] = embedder(args.model, args.device)
        with ark_scp_writer(shards.path(job, "ark"), shards.path(job, "scp")) as put, torch.no_grad():
            for utt in tqdm(part, desc=f"embeddings job {job}", mininterval=10):
                wav = read_utterance(data, utt)
                if np.abs(wav).max() < 1e-6:
                    raise ValueError(f"{data.describe(utt)}: silent audio, no speaker embedding possible "
                                     "(remove the utterance or its trials)")
                put(utt, state["f"](wav).float().cpu().numpy())
        return {"num_utts": len(part)}

    def merge() -> None:
        shards.merge_text("scp", "emb.scp", expect=utts)

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
