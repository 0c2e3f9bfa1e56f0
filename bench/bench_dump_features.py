"""Feature dump throughput vs the bare model: how much of the model's speed `python -m wavlm.bin.dump_features`
keeps (reading audio, batching, writing arks).

    tools/venv/bin/python bench/bench_dump_features.py [--reps 3] [--threads 2] [--files 30]
                                                       [--min_seconds 4] [--max_seconds 12] [--layer last]
                                                       [--io_workers 1] [--small]

A randomly initialised WavLM Base (WavLMConfig(), torch.manual_seed) is saved as one of our checkpoints and
a Kaldi data dir of --files wav files (16-bit PCM, seeded random lengths in [--min_seconds, --max_seconds],
speech-like noise) is written in a temporary dir. In one process, interleaved repetition by repetition (the
best of --reps is reported):
  bare: `model.extract_features` on each utterance alone (tensors preloaded, torch.inference_mode, the
        hidden states up to --layer only, as the dumper computes them);
  dump: `dump_features.main([... --nj 1 --layer L --num_threads T])` in-process over the data dir, into a
        fresh output dir; the time its `load_model` takes is measured (wrapped) and subtracted.
Throughputs are audio seconds per wall second. --small: the tiny conf/model/debug.yaml and 4 files of about 2 s
(a smoke run).
Run it on an idle machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wavlm.bin import dump_features  # noqa: E402
from wavlm.features.dump import parse_layer  # noqa: E402
from wavlm.features.shards import iter_feats  # noqa: E402
from wavlm.models.checkpoint import load_model, save_checkpoint  # noqa: E402
from wavlm.models.wavlm import WavLM, WavLMConfig  # noqa: E402
from wavlm.tasks.common import load_model_config  # noqa: E402

SR = 16000


def speechlike(n: int, rng: np.random.Generator) -> np.ndarray:
    """Amplitude-modulated harmonics of a wandering f0, plus noise."""
    t = np.arange(n) / SR
    f0 = rng.uniform(90, 220) + 30 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 6))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6))
    return (0.1 * x * env + 0.01 * rng.standard_normal(n)).astype(np.float32)


def make_data(root: Path, files: int, lo: float, hi: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    (root / "wavs").mkdir(parents=True)
    utts = [f"spk{i % 3}-utt{i:03d}" for i in range(files)]
    lines = []
    for u in sorted(utts):
        p = root / "wavs" / f"{u}.wav"
        sf.write(p, speechlike(int(rng.uniform(lo, hi) * SR), rng), SR, subtype="PCM_16")
        lines.append(f"{u} {p}\n")
    (root / "wav.scp").write_text("".join(lines))
    (root / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
    return sorted(utts)


def bare(model: WavLM, wavs: list[torch.Tensor], num_layers: int | None, layer: int) -> tuple[float, list]:
    outs = []
    t = time.perf_counter()
    with torch.inference_mode():
        for w in wavs:
            outs.append(model.extract_features(w[None], num_layers=num_layers).hidden_states[layer][0])
    return time.perf_counter() - t, outs


def dump(argv: list[str]) -> tuple[float, float]:
    """(wall seconds of dump_features.main, of which in load_model); its log is shown only on failure."""
    loads: list[float] = []
    real = dump_features.load_model

    def timed_load(*a, **k):
        t0 = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            loads.append(time.perf_counter() - t0)

    log = io.StringIO()
    dump_features.load_model = timed_load
    try:
        with contextlib.redirect_stderr(log):
            t = time.perf_counter()
            rc = dump_features.main(argv)
            wall = time.perf_counter() - t
    finally:
        dump_features.load_model = real
    if rc != 0:
        sys.exit(f"dump_features failed:\n{log.getvalue()}")
    return wall, sum(loads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch threads (and the dump's --num_threads)")
    p.add_argument("--files", type=int, default=None, help="wav files (default 30; --small: 4)")
    p.add_argument("--min_seconds", type=float, default=None, help="shortest file (default 4; --small: 1.5)")
    p.add_argument("--max_seconds", type=float, default=None, help="longest file (default 12; --small: 2.5)")
    p.add_argument("--layer", default="last", help="hidden state N or 'last' (as dump_features --layer)")
    p.add_argument("--io_workers", type=int, default=1, choices=(0, 1), help="dump_features --io_workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="tiny model and 4 short files: a smoke run")
    args = p.parse_args()
    files = args.files or (4 if args.small else 30)
    lo = args.min_seconds or (1.5 if args.small else 4.0)
    hi = args.max_seconds or (2.5 if args.small else 12.0)

    load_before = os.getloadavg()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_dump_") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(args.seed)
        cfg = load_model_config("debug") if args.small else WavLMConfig()
        save_checkpoint(tmp / "model.pt", WavLM(cfg).eval())
        utts = make_data(tmp / "data", files, lo, hi, args.seed)
        model = load_model(tmp / "model.pt")
        model.eval()
        layer = parse_layer(args.layer, model.num_layers)
        if len(layer) != 1:
            sys.exit("--layer: one hidden state (N or last)")
        num_layers = None if layer[0] == model.num_layers else layer[0]
        wavs = [torch.from_numpy(sf.read(tmp / "data" / "wavs" / f"{u}.wav", dtype="float32")[0]) for u in utts]
        audio = sum(len(w) for w in wavs) / SR
        print(
            f"model {'tiny' if args.small else 'Base'} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
            f"params, random), layer {args.layer} (hidden state {layer[0]}); {files} files, {audio:.1f} s of audio "
            f"({lo:g}-{hi:g} s each)"
        )
        print(
            f"torch threads {torch.get_num_threads()} (dump --num_threads {args.threads}), "
            f"dump --io_workers {args.io_workers}, --reps {args.reps}; "
            f"load average before {' '.join(f'{x:.2f}' for x in load_before)}"
        )
        with torch.inference_mode():
            model.extract_features(torch.zeros(1, SR))  # warm-up: libraries, first allocations
        argv = ["--model", str(tmp / "model.pt"), "--data", str(tmp / "data"), "--layer", args.layer,
                "--nj", "1", "--device", "cpu", "--num_threads", str(args.threads),
                "--io_workers", str(args.io_workers)]
        best_bare = best_dump = float("inf")
        load_s = 0.0
        outs: list = []
        for rep in range(args.reps):
            order = ("bare", "dump") if rep % 2 == 0 else ("dump", "bare")
            line = {}
            for what in order:
                if what == "bare":
                    wall, outs = bare(model, wavs, num_layers, layer[0])
                    best_bare = min(best_bare, wall)
                    line[what] = f"bare {wall:.2f} s ({audio / wall:.1f} audio s/s)"
                else:
                    out = tmp / f"dump{rep}"
                    wall, load = dump([*argv, "--out", str(out)])
                    if wall - load < best_dump:
                        best_dump, load_s = wall - load, load
                    line[what] = (
                        f"dump {wall:.2f} s - model loading {load:.2f} s = {wall - load:.2f} s "
                        f"({audio / (wall - load):.1f} audio s/s)"
                    )
            print(f"rep {rep + 1}: {line['bare']}; {line['dump']}", flush=True)
        dumped = dict(iter_feats(tmp / f"dump{args.reps - 1}" / "feats.scp", utts))
        diff = max(float(np.abs(dumped[u] - o.numpy()).max()) for u, o in zip(utts, outs, strict=True))
    load_after = os.getloadavg()
    tb, td = audio / best_bare, audio / best_dump
    print(f"bare model: {tb:.2f} audio s per wall s (best of {args.reps})")
    print(
        f"dump:       {td:.2f} audio s per wall s (best of {args.reps}; model loading measured separately and "
        f"subtracted: {load_s:.2f} s in the best rep; reading, batching, writing arks and the merge included)"
    )
    print(f"ratio dump / bare: {td / tb:.3f}")
    print(f"max abs difference dump vs bare features: {diff:.2g}")
    print(f"torch threads {torch.get_num_threads()}; load average after {' '.join(f'{x:.2f}' for x in load_after)}")


if __name__ == "__main__":
    main()
