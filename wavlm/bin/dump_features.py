"""Dump WavLM hidden states of a Kaldi data dir as kaldiio ark/scp (for k-means, SUPERB-style probing).

    python -m wavlm.bin.dump_features --model CKPT --layer 6 --data data/train --out dump/l6/train \\
        --nj 8 --job 3                                                      # one job (as $cmd JOB=1:8 runs)
    python -m wavlm.bin.dump_features ... --nj 8 --merge                    # merge the jobs' scp files
    python -m wavlm.bin.dump_features ... --nj 8                            # all jobs in-process, then merge

CKPT: a released WavLM .pt, a Hugging Face directory or one of our checkpoints. --layer: N (0 = encoder
input, 1..L = layer outputs, as hidden_states), `last`, or `all` (keys `utt@N`; see
wavlm/features/dump.py for the layout). Job K writes OUT/feats.K.{ark,scp,utt2num_frames} and
OUT/feats.K.done; a finished job is skipped when rerun with the same data and options. Long recordings
are processed in overlapping windows (--chunk_seconds, --chunk_overlap_seconds).

I/O overlaps compute: audio is read and checked in one DataLoader worker process (--io_workers 1; 0: in the
main thread), in groups of up to --batch_seconds of audio, 4 groups ahead (a pool of FeatureDumper.run); its
errors come back as items and are re-raised here unchanged. A thread fed through a bounded queue writes the
arks, in compute order (the same bytes as writing inline); its errors stop the job.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import queue
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, IterableDataset

from wavlm.bin import run_main
from wavlm.data.audio import SAMPLE_RATE, AudioError
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.features.dump import (
    DumpOptions,
    FeatureDumper,
    default_device,
    frames_per_second,
    parse_layer,
    prepare_audio,
)
from wavlm.features.shards import (
    ShardError,
    Shards,
    add_shard_args,
    ark_scp_writer,
    model_stamp,
    write_feature_info,
)
from wavlm.models.checkpoint import CheckpointError, load_model

logger = logging.getLogger(__name__)

PREFETCH_GROUPS = 4  # groups of <= batch_seconds of audio the reader is ahead: FeatureDumper.run's pool
WRITE_QUEUE = 8  # utterances computed but not yet written


# ---- reading audio in a worker process ------------------------------------------------------------------


class _RemoteTraceback(Exception):
    """The traceback text of an exception raised in the reader process (shown as its cause)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ReadFailure:
    """An exception raised while reading or checking audio, sent to the main process as an item."""

    def __init__(self, exc: Exception):
        self.trace = "".join(traceback.format_exception(exc))
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # an exception type that does not survive pickling: keep its type's name and message
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        self.exc = exc

    def reraise(self) -> None:
        if self.exc.__traceback__ is None:  # came through a process: show where it happened there
            raise self.exc from _RemoteTraceback(self.trace)
        raise self.exc


class PreparedAudio(IterableDataset):
    """The utterances `utts` of the data dir `data`, read (a recording once for all its segments) and checked
    as `FeatureDumper.prepare` does, in order, as lists of (utt, mono float32 [S]) of at most `group_samples`
    samples (at least one utterance). Built from the path and options only (picklable, no model), so that it
    can run in a DataLoader worker; an error ends the stream with a `ReadFailure` item."""

    def __init__(self, data: str, utts: list[str], opts: DumpOptions, min_samples: int, group_samples: int):
        self.data = str(data)
        self.utts = list(utts)
        self.opts = opts
        self.min_samples = min_samples
        self.group_samples = group_samples

    def __iter__(self) -> Iterator[list[tuple[str, np.ndarray]] | ReadFailure]:
        group: list[tuple[str, np.ndarray]] = []
        size = 0
        try:
            d = DataDir(self.data)
            for utt, wav, sr in d.iter_audio(self.utts):
                x = prepare_audio(wav, sr, d.describe(utt), self.opts, self.min_samples)
                if group and size + len(x) > self.group_samples:
                    yield group
                    group, size = [], 0
                group.append((utt, x))
                size += len(x)
        except Exception as e:  # the job fails: what was read before does not matter
            yield ReadFailure(e)
            return
        if group:
            yield group


def _as_is(item):  # DataLoader collate_fn: numpy arrays are pickled through a pipe, not put in /dev/shm
    return item


def prepared_audio(dataset: PreparedAudio, workers: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, checked audio) of `dataset`, read in a worker process (`workers` 1) or here (0). The worker
    starts now (not at the first item), so that it is forked before the caller starts threads."""
    if workers not in (0, 1):
        raise ValueError(f"--io_workers must be 0 or 1 (one reader keeps the order), got {workers}")
    if workers == 0:
        return _unpack(iter(dataset))
    loader = DataLoader(
        dataset, batch_size=None, num_workers=1, prefetch_factor=PREFETCH_GROUPS, collate_fn=_as_is
    )
    return _unpack(iter(loader))


def _unpack(source: Iterator) -> Iterator[tuple[str, np.ndarray]]:
    try:
        for item in source:
            if isinstance(item, ReadFailure):
                item.reraise()
            yield from item
    finally:
        del source  # a DataLoader iterator stops its worker when freed: now, not when a traceback goes


# ---- writing arks in a thread ---------------------------------------------------------------------------


class ArkWriterThread:
    """Calls `put(key, matrix)` in a thread, in the order `write` is called, through a queue of at most
    `maxsize` utterances; collects the utt2num_frames lines. An error in the thread is re-raised by the next
    `write` or at the end of the `with` block; an error in the caller's block stops the thread."""

    _STOP = object()

    def __init__(self, put: Callable[[str, np.ndarray], None], maxsize: int = WRITE_QUEUE):
        self.put = put
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.abort = False
        self.thread = threading.Thread(target=self._loop, name="ark-writer", daemon=True)

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is self._STOP:
                return
            if self.error is not None or self.abort:
                continue  # keep taking items so that the caller never blocks on a full queue
            utt, mats = item
            try:
                for key, mat in mats:
                    self.put(key, mat)
                self.lines.append(f"{utt} {mats[0][1].shape[0]}\n")
            except BaseException as e:  # re-raised in the caller's thread
                self.error = e

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def write(self, utt: str, mats: list[tuple[str, np.ndarray]]) -> None:
        self._check()
        self.queue.put((utt, mats))

    def __enter__(self) -> ArkWriterThread:
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort = True
        self.queue.put(self._STOP)
        self.thread.join()
        if exc_type is None:
            self._check()


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavlm.bin.dump_features",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="checkpoint: released .pt, Hugging Face dir, or ours")
    p.add_argument("--layer", default="last", help="hidden state index N (0..L), 'last' or 'all'")
    p.add_argument("--data", required=True, help="Kaldi data dir (wav.scp, optional segments)")
    p.add_argument("--out", required=True, help="output dir for feats.*.ark/scp")
    add_shard_args(p)
    p.add_argument(
        "--batch_seconds", type=float, default=60.0, help="audio per padded batch (padding included)"
    )
    p.add_argument(
        "--chunk_seconds",
        type=float,
        default=30.0,
        help="recordings longer than this (+ 2 x overlap) go in windows of this core length; 0: never",
    )
    p.add_argument(
        "--chunk_overlap_seconds", type=float, default=5.0, help="context each side of a window core"
    )
    p.add_argument(
        "--channel", type=int, default=None, help="channel to use for multi-channel audio (0-based)"
    )
    p.add_argument(
        "--resample", action="store_true", help="resample audio that is not 16 kHz (sox) instead of failing"
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--io_workers",
        type=int,
        default=1,
        choices=(0, 1),
        help="1: read and check audio in a worker process, ahead of the model; 0: in the main thread",
    )
    p.add_argument(
        "--num_threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument(
        "--weights_only",
        default=True,
        action=argparse.BooleanOptionalAction,
        help="torch.load(weights_only=True) for .pt files (default)",
    )
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
    opts = DumpOptions(
        layer=args.layer,
        batch_seconds=args.batch_seconds,
        chunk_seconds=args.chunk_seconds,
        overlap_seconds=args.chunk_overlap_seconds,
        channel=args.channel,
        resample=args.resample,
    )
    config = {
        "kind": "wavlm",
        "model": str(Path(args.model).resolve()),
        "model_stamp": model_stamp(args.model),
        "layer": str(args.layer),
        "chunk_seconds": opts.chunk_seconds,
        "overlap_seconds": opts.overlap_seconds,
        "channel": opts.channel,
        "resample": opts.resample,
    }
    shards = Shards(args.out, "feats", args.nj, config)
    state: dict[str, FeatureDumper] = {}

    def dumper() -> FeatureDumper:
        if "d" not in state:
            model = load_model(args.model, weights_only=args.weights_only)
            parse_layer(args.layer, model.num_layers)  # validate before any work
            state["d"] = FeatureDumper(model, opts, args.device or default_device())
        return state["d"]

    def process(part: list[str], job: int) -> dict:
        d = dumper()
        ark, scp = shards.path(job, "ark"), shards.path(job, "scp")
        audio = PreparedAudio(args.data, part, opts, d.rf, int(opts.batch_seconds * SAMPLE_RATE))
        items = prepared_audio(audio, args.io_workers)  # before the writer thread: the worker forks here
        with closing(items), ark_scp_writer(ark, scp) as put, ArkWriterThread(put) as writer:
            for utt, feats in d.run(items, total=len(part), desc=f"wavlm job {job}"):
                writer.write(utt, list(zip(d.keys(utt), feats, strict=True)))
        lens = writer.lines
        atomic_write_text(shards.path(job, "utt2num_frames"), "".join(lens))
        return {"num_utts": len(part), "num_frames": sum(int(x.split()[1]) for x in lens)}

    def merge() -> None:
        model_layers = None
        if args.layer == "all":
            # keys utt@N: the merged scp, plus one ordinary feature dir per layer
            all_scp = shards.merge_text("scp", "feats.scp")
            per_layer: dict[str, list[str]] = defaultdict(list)
            with open(all_scp, encoding="utf-8") as f:
                for line in f:
                    key, spec = line.rstrip("\n").split(" ", 1)
                    utt, _, lay = key.rpartition("@")
                    per_layer[lay].append(f"{utt} {spec}\n")
            model_layers = sorted(per_layer, key=int)
            for lay in model_layers:
                lines = sorted(per_layer[lay], key=lambda s: s.split(" ", 1)[0].encode())
                atomic_write_text(Path(args.out) / f"layer{lay}" / "feats.scp", "".join(lines))
        else:
            shards.merge_text("scp", "feats.scp", expect=utts)
        shards.merge_text("utt2num_frames", "utt2num_frames", expect=utts)
        d = dumper()
        info = {
            "kind": "wavlm",
            "dim": d.model.embed_dim,
            "frame_rate": frames_per_second(d.model),
            "layer": str(args.layer),
            "layers": d.layers,
            "model": str(args.model),
            "data": str(args.data),
            "chunk_seconds": opts.chunk_seconds,
            "overlap_seconds": opts.overlap_seconds,
            "keys": "utt@layer" if model_layers else "utt",
        }
        write_feature_info(args.out, info)
        if model_layers:
            for lay in model_layers:
                write_feature_info(
                    Path(args.out) / f"layer{lay}",
                    {**info, "layer": lay, "layers": [int(lay)], "keys": "utt"},
                )

    shards.run(utts, args.job, args.merge, process, merge)


if __name__ == "__main__":
    sys.exit(main())
