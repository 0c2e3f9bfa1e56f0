"""Speaker diarization of a Kaldi data dir with a frame classifier: our SD checkpoint (wavlm.bin.train_superb, task
sd) or a Hugging Face WavLMForAudioFrameClassification dir (microsoft/wavlm-base-plus-sd), both through
wavlm.load_frame_classifier.

    python -m wavlm.bin.diarize --model exp/base/sd/checkpoint_best.pt --data data/test --out exp/base/sd/test
    python -m wavlm.bin.diarize --model /models/wavlm-base-plus-sd --data data/test --out exp/hf_base_plus_sd/test

Each recording of DATA/wav.scp is read whole and, when longer than --chunk_seconds, cut into chunks whose frames
join exactly into the recording's frames (each chunk carries the few samples of the analysis window that pass its
end); the transformer then sees one chunk at a time. Writes
    OUT/posteriors.{ark,scp}   sigmoid speaker activity [frames, speakers] per recording (kaldiio)
    OUT/hyp.rttm               turns after --threshold and a --median filter (wavlm.metrics.diarization)
    OUT/info.json              model, data, frame shift (s), threshold, median, speakers
wavlm.bin.score_diar tunes threshold and median filter on a dev set and scores DER from the posteriors.
"""
from __future__ import annotations

import argparse
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
from wavlm.data.rttm import write_rttm
from wavlm.features.dump import default_device
from wavlm.features.shards import ark_scp_writer
from wavlm.metrics.diarization import posteriors_to_turns
from wavlm.models.checkpoint import CheckpointError

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wavlm.bin.diarize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="SD checkpoint of ours, or a WavLMForAudioFrameClassification dir")
    p.add_argument("--data", required=True, help="Kaldi data dir (wav.scp; one recording per line)")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--threshold", type=float, default=0.5, help="speaker active when its posterior is above")
    p.add_argument("--median", type=int, default=1, help="median filter length in frames (odd; 1: none)")
    p.add_argument("--chunk_seconds", type=float, default=60.0, help="longer recordings are run in chunks")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main(get_parser().parse_args(argv), run, (AudioError, DataDirError, CheckpointError, ValueError))


def chunk_bounds(num_samples: int, chunk: int, shift: int, frames_of) -> list[tuple[int, int, int]]:
    """(first sample, end sample, frames kept) of each chunk of a recording. Chunks start every `chunk` samples (a
    multiple of the frame shift, so chunk i's first frame is frame i * chunk / shift of the whole recording) and
    read the extra samples the analysis window of their last frame needs, so their frames join into exactly those
    of the whole recording, frames_of(num_samples)."""
    total = frames_of(num_samples)
    per_chunk = chunk // shift
    extra = 0  # window length - shift: what a chunk's last frame reads past the chunk
    while frames_of(chunk + extra) < per_chunk:
        extra += 1
    out, done = [], 0
    for start in range(0, num_samples, chunk):
        end = min(start + chunk + extra, num_samples)
        keep = min(per_chunk, total - done, frames_of(end - start))
        if keep <= 0:
            break
        out.append((start, end, keep))
        done += keep
    if done != total:
        raise AssertionError(f"chunks of {num_samples} samples give {done} frames, not {total}")
    return out


@torch.no_grad()
def run(args: argparse.Namespace) -> None:
    import wavlm

    if args.median < 1 or args.median % 2 == 0:
        raise ValueError(f"--median must be an odd number of frames >= 1, got {args.median}")
    data = DataDir(args.data)
    if (data.path / "segments").is_file():
        raise DataDirError(f"{data.path}: has a segments file; diarization reads whole recordings (wav.scp only)")
    recos = data.utt_ids()
    if not recos:
        raise DataDirError(f"{args.data}: no recordings in wav.scp")
    device = torch.device(args.device or default_device())
    model = wavlm.load_frame_classifier(args.model).to(device).eval()
    shift = model.frame_shift  # samples per frame
    chunk = max(1, int(args.chunk_seconds * SAMPLE_RATE) // shift) * shift
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    turns = []
    with ark_scp_writer(out / "posteriors.ark", out / "posteriors.scp") as put:
        for reco in tqdm(recos, desc=f"diarize {data.path.name}", mininterval=10):
            wav = read_utterance(data, reco)
            if model.frames(len(wav)) < 1:
                raise ValueError(f"{data.path}/wav.scp: recording {reco} ({len(wav)} samples) is shorter than one "
                                 f"frame of the model")
            parts = []
            for start, end, keep in chunk_bounds(len(wav), chunk, shift, model.frames):
                x = torch.from_numpy(wav[start:end]).to(device)[None]
                parts.append(torch.sigmoid(model(x).logits[0, :keep].float()).cpu().numpy())
            post = np.concatenate(parts)
            put(reco, post)
            turns += posteriors_to_turns(reco, post, shift / SAMPLE_RATE, args.threshold, args.median)
    write_rttm(out / "hyp.rttm", turns)
    info = {"model": str(Path(args.model).resolve()), "data": str(data.path.resolve()),
            "frame_shift": shift / SAMPLE_RATE, "threshold": args.threshold, "median": args.median,
            "speakers": model.num_labels, "recordings": len(recos), "chunk_seconds": chunk / SAMPLE_RATE}
    atomic_write_text(out / "info.json", json.dumps(info, indent=1) + "\n")
    log.info("%d recordings of %s: posteriors and %s", len(recos), data.path, out / "hyp.rttm")


if __name__ == "__main__":
    sys.exit(main())
