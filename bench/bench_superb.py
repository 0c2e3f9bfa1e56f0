"""Cost of a SUPERB training step with a frozen upstream computed every step, split into upstream and head.

    tools/venv/bin/python bench/bench_superb.py                      # Base-size WavLM, 4 x 4 s, 2 threads
    tools/venv/bin/python bench/bench_superb.py --preset debug --reps 2 --no-memory   # a quick look

A randomly initialised WavLM (`--preset base`: conf/model/base.yaml, 95M parameters) is saved with
`wavlm.models.checkpoint.save_checkpoint` to a temporary file and read back through
`wavlm.models.upstream.load_upstream`, so the path a recipe uses is the one timed. Batches are `--batch`
utterances of `--seconds` seconds of random audio (no padding) with random CTC targets (ASR: 32 units,
14 per second; PR: 72 units, 11 per second). One training step: forward, CTC loss (summed per-utterance
losses divided by the target lengths, then by the batch size, as wavlm/tasks/superb.py), backward,
gradient clipping at 1.0 and an AdamW step. Heads (wavlm/models/superb.py CtcHead, s3prl's SUPERB heads):

  asr   Linear(768, 1024) -> 2 x BiLSTM 1024 (dropout 0.2) -> Linear(2048, 32)   (the heaviest head)
  pr    Linear(768, 256) -> Linear(256, 72)

Two ways of running the same step, same weights, same head initialisation, interleaved repetition by
repetition (best of `--reps` reported; the machine may be shared, so the load average is printed before
and after):

  ours   SuperbModel as built: the frozen upstream (eval mode, parameters requires_grad False) under
         torch.no_grad(), then WeightedLayerSum's running sum of the L+1 states, then the head.
  naive  what one gets without no_grad. With the parameters frozen (requires_grad False) and an input that
         needs no gradient, autograd records nothing even without no_grad (the script checks and prints it),
         so that is not a mistake with a cost. The common mistake is the other one: the upstream's parameters
         left requiring gradients but kept out of the optimizer, so autograd keeps every activation of the
         upstream and backward runs through all of it (the gradients are computed and thrown away), and
         all L+1 states stacked, (softmax(w)[:, None, None, None] * torch.stack(states)).sum(0).

Printed per head: steps per second of ours and of naive and their ratio; for ours the split of its best
step: upstream forward seconds, weighted sum + head forward + backward + optimizer step seconds, the
upstream's share; the first (warm-up) step's loss of both (same seed: they agree to float rounding, a check
that the two compute the same thing). Memory (unless `--no-memory`): in a fresh subprocess per head and
variant, after one warm-up step (optimizer state allocated), a thread samples the resident set size
(/proc/self/statm) every millisecond during a second step; the peak minus the size just before the step is
what one step needs on top of weights and optimizer state.

Measured (the defaults: Base, 4 x 4 s, 2 threads, 5 reps; one run, torch 2.13.0 CPU build, fp32, on a
2-CPU machine shared with other people's tests: load average 0.53/1.63/1.48 before, 1.71/1.75/1.56 after,
which includes this run's own 2 threads; the spread of the repetitions is in the last line of each):

  [asr] head 42.83M parameters, 199 frames x 4 utterances, 56 targets each
    steps/s       ours 0.393   naive 0.149   ours/naive 2.63x
    ours split    upstream forward 1.547 s/step   weighted sum + head fwd/bwd/step 0.998 s/step   upstream share 60.8 %
    naive split   upstream forward (graph kept) 1.594 s/step   the rest (backward through the upstream
                  included) 5.102 s/step
    step memory   ours 250 MiB   naive 1023 MiB (peak RSS during a step over the RSS before it)
    warm-up loss  ours 9.252187   naive 9.252187   |diff| 0.0e+00
    all steps (s) ours [3.039, 2.545, 3.051, 2.773, 2.65]   naive [8.561, 6.696, 8.723, 7.137, 6.837]
  [pr] head 0.22M parameters, 199 frames x 4 utterances, 44 targets each
    steps/s       ours 0.708   naive 0.231   ours/naive 3.06x
    ours split    upstream forward 1.392 s/step   weighted sum + head fwd/bwd/step 0.019 s/step   upstream share 98.6 %
    naive split   upstream forward (graph kept) 1.341 s/step   the rest (backward through the upstream
                  included) 2.983 s/step
    step memory   ours 200 MiB   naive 1053 MiB (peak RSS during a step over the RSS before it)
    warm-up loss  ours 15.308767   naive 15.308767   |diff| 0.0e+00
    all steps (s) ours [1.572, 1.67, 1.412, 1.428, 1.436]   naive [4.639, 4.324, 4.55, 4.42, 4.418]

So with a frozen upstream computed every step the upstream's forward is most of a step: about 60 % with the
ASR head (2 x BiLSTM 1024, the heaviest) and nearly all of it with the PR head. Without no_grad (parameters
left requiring gradients) a step takes 2.6-3.1 times as long, the backward through the upstream, and needs
about 0.8 GiB more per step at this batch. The remaining cost is the
forward itself: dumping the hidden states once (wavlm/features) would remove it, at the price of storing
L+1 states per frame (13 x 768 floats, 40 kB, per 20 ms frame) and of no waveform-level augmentation.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wavlm.models.superb import CtcHead, SuperbModel  # noqa: E402
from wavlm.models.upstream import Upstream, load_upstream  # noqa: E402

HEADS = {  # name: (project_dim, rnn_layers, units, targets per second)
    "asr": (1024, 2, 32, 14.0),
    "pr": (256, 0, 72, 11.0),
}
VARIANTS = ("ours", "naive")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="base", help="upstream model preset (conf/model/<name>.yaml): base, debug")
    p.add_argument("--heads", default="asr,pr", help=f"comma-separated, of {sorted(HEADS)}")
    p.add_argument("--batch", type=int, default=4, help="utterances per batch")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds per utterance")
    p.add_argument("--reps", type=int, default=5, help="timed steps of each variant (interleaved; best reported)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-memory", action="store_true", help="skip the per-step memory subprocesses")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--memory-child", nargs=3, metavar=("CKPT", "HEAD", "VARIANT"), help=argparse.SUPPRESS)
    return p


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def make_head(name: str, dim: int, seed: int) -> CtcHead:
    project_dim, rnn_layers, units, _ = HEADS[name]
    torch.manual_seed(seed)
    return CtcHead(dim, units, project_dim=project_dim, rnn_layers=rnn_layers, rnn_dim=1024)


class NaiveSuperb(nn.Module):
    """The peer: the upstream run with autograd (its parameters require gradients; they are left out of the
    optimizer), all states stacked before the weighted sum."""

    def __init__(self, upstream: Upstream, head: nn.Module):
        super().__init__()
        self.upstream, self.head = upstream, head
        self.weights = nn.Parameter(torch.zeros(upstream.num_states))
        for p in upstream.parameters():
            p.requires_grad_(True)

    def states(self, wav: Tensor, lengths: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        out = self.upstream.extract(wav, lengths)  # Upstream.forward would wrap it in no_grad
        return out.hidden_states, out.lengths

    def combine(self, states: Sequence[Tensor]) -> Tensor:
        w = torch.softmax(self.weights, dim=0)
        return (w[:, None, None, None] * torch.stack(list(states))).sum(0)


@dataclass
class Runner:
    """One variant's training step, timed in two parts."""

    name: str
    model: nn.Module
    states: Callable[[Tensor, Tensor], tuple[Sequence[Tensor], Tensor]]
    combine: Callable[[Sequence[Tensor]], Tensor]
    head: CtcHead
    optimizer: torch.optim.Optimizer

    def step(self, wav: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor) -> tuple[float, float, float]:
        """-> (upstream forward seconds, the rest of the step in seconds, loss)."""
        t0 = time.perf_counter()
        states, frames = self.states(wav, lengths)
        t1 = time.perf_counter()
        loss, _ = self.head.loss(self.combine(states), frames, targets, target_lengths)
        loss = loss / wav.shape[0]
        self.model.zero_grad(set_to_none=True)  # the naive upstream's gradients too
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self.optimizer.step()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, float(loss.detach())


def build_runner(variant: str, ckpt: str, head_name: str, seed: int) -> Runner:
    upstream = load_upstream(ckpt)
    head = make_head(head_name, upstream.dim, seed)
    if variant == "ours":
        ours = SuperbModel(upstream, head)

        def states(wav: Tensor, lengths: Tensor) -> tuple[Sequence[Tensor], Tensor]:
            out = ours.upstream(wav, lengths)  # Upstream.forward: under no_grad
            return out.hidden_states, out.lengths

        model: nn.Module = ours
        combine: Callable[[Sequence[Tensor]], Tensor] = ours.featurizer
    else:
        naive = NaiveSuperb(upstream, head)
        model, states, combine = naive, naive.states, naive.combine  # type: ignore[assignment]
    model.train()  # the frozen upstream stays in eval mode (Upstream.train)
    trainable = [p for n, p in model.named_parameters() if not n.startswith("upstream.")]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    return Runner(variant, model, states, combine, head, opt)


def make_batch(head_name: str, batch: int, seconds: float, frames_per_utt: int, seed: int) -> tuple[Tensor, ...]:
    _, _, units, rate = HEADS[head_name]
    g = torch.Generator().manual_seed(seed)
    samples = int(round(seconds * 16000))
    wav = torch.randn(batch, samples, generator=g) * 0.1
    lengths = torch.full((batch,), samples, dtype=torch.long)
    n = max(1, min(int(seconds * rate), frames_per_utt // 2))
    targets = torch.randint(1, units, (batch, n), generator=g)
    return wav, lengths, targets, torch.full((batch,), n, dtype=torch.long)


def check_autograd_when_frozen(upstream: Upstream, wav: Tensor, lengths: Tensor) -> str:
    """Run the frozen upstream (requires_grad False) without no_grad: does autograd record anything?"""
    out = upstream.extract(wav[:1, : 16000], lengths[:1].clamp(max=16000))
    h = out.hidden_states[-1]
    return f"requires_grad {h.requires_grad}, grad_fn {type(h.grad_fn).__name__ if h.grad_fn else None}"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(ckpt: str, head_name: str, variant: str, args: argparse.Namespace) -> None:
    """One warm-up step, then the peak resident set size during a second step over the size before it."""
    torch.set_num_threads(args.threads)
    runner = build_runner(variant, ckpt, head_name, args.seed)
    upstream: Upstream = runner.model.upstream
    batch = make_batch(head_name, args.batch, args.seconds, upstream.frames(int(args.seconds * 16000)), args.seed)
    runner.step(*batch)
    gc.collect()
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    base = rss_bytes()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    runner.step(*batch)
    stop.set()
    th.join()
    print(json.dumps({"peak_delta_mib": (max(peak[0], rss_bytes()) - base) / 2**20, "base_mib": base / 2**20}))


def measure_memory(ckpt: str, head_name: str, variant: str, args: argparse.Namespace) -> float:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", ckpt, head_name, variant,
           "--preset", args.preset, "--batch", str(args.batch), "--seconds", str(args.seconds),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory subprocess for {head_name}/{variant} failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_delta_mib"])


def bench_head(head_name: str, ckpt: str, args: argparse.Namespace) -> dict:
    runners = {v: build_runner(v, ckpt, head_name, args.seed) for v in VARIANTS}
    upstream: Upstream = runners["ours"].model.upstream
    frames = upstream.frames(int(args.seconds * 16000))
    batch = make_batch(head_name, args.batch, args.seconds, frames, args.seed)
    head_params = sum(p.numel() for p in runners["ours"].head.parameters())
    print(f"[{head_name}] head {head_params / 1e6:.2f}M parameters, {frames} frames x {args.batch} utterances, "
          f"{int(batch[3][0])} targets each", flush=True)
    warm = {}
    for v in VARIANTS:  # warm-up; same seed: the same dropout masks, so the same loss
        torch.manual_seed(args.seed + 1)
        warm[v] = runners[v].step(*batch)[2]
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for r in range(args.reps):
        for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            gc.collect()
            up, rest, _ = runners[v].step(*batch)
            times[v].append((up, rest))
    del runners
    gc.collect()
    best = {v: min(times[v], key=sum) for v in VARIANTS}
    res = {"head": head_name, "head_params": head_params, "frames": frames,
           "warmup_loss": warm, "steps_per_s": {v: 1.0 / sum(best[v]) for v in VARIANTS},
           "ours_upstream_s": best["ours"][0], "ours_rest_s": best["ours"][1],
           "naive_upstream_fwd_s": best["naive"][0], "naive_rest_s": best["naive"][1],
           "all_steps_s": {v: [round(sum(t), 3) for t in times[v]] for v in VARIANTS}}
    res["ratio"] = res["steps_per_s"]["ours"] / res["steps_per_s"]["naive"]
    res["ours_upstream_share"] = best["ours"][0] / sum(best["ours"])
    if not args.no_memory:
        res["step_peak_mib"] = {v: measure_memory(ckpt, head_name, v, args) for v in VARIANTS}
    return res


def report(r: dict) -> None:
    sps = r["steps_per_s"]
    print(f"  steps/s       ours {sps['ours']:.3f}   naive {sps['naive']:.3f}   ours/naive {r['ratio']:.2f}x")
    print(f"  ours split    upstream forward {r['ours_upstream_s']:.3f} s/step   weighted sum + head fwd/bwd/step "
          f"{r['ours_rest_s']:.3f} s/step   upstream share {100 * r['ours_upstream_share']:.1f} %")
    print(f"  naive split   upstream forward (graph kept) {r['naive_upstream_fwd_s']:.3f} s/step   the rest "
          f"(backward through the upstream included) {r['naive_rest_s']:.3f} s/step")
    if "step_peak_mib" in r:
        m = r["step_peak_mib"]
        print(f"  step memory   ours {m['ours']:.0f} MiB   naive {m['naive']:.0f} MiB (peak RSS during a step over "
              f"the RSS before it)")
    w = r["warmup_loss"]
    print(f"  warm-up loss  ours {w['ours']:.6f}   naive {w['naive']:.6f}   |diff| {abs(w['ours'] - w['naive']):.1e}")
    print(f"  all steps (s) ours {r['all_steps_s']['ours']}   naive {r['all_steps_s']['naive']}", flush=True)


def main() -> None:
    args = get_parser().parse_args()
    if args.memory_child:
        memory_child(*args.memory_child, args)
        return
    heads = [h for h in args.heads.split(",") if h]
    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise SystemExit(f"--heads: unknown {unknown} (known: {sorted(HEADS)})")
    torch.set_num_threads(args.threads)
    from wavlm.models.checkpoint import save_checkpoint
    from wavlm.models.wavlm import WavLM
    from wavlm.tasks.common import load_model_config

    print(f"load average before: {load()} ({os.cpu_count()} CPUs); torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, fp32", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_superb.") as tmp:
        torch.manual_seed(args.seed)
        ckpt = str(Path(tmp) / f"wavlm_{args.preset}.pt")
        save_checkpoint(ckpt, WavLM(load_model_config(args.preset)))
        up = load_upstream(ckpt)
        print(f"upstream {args.preset}: {sum(p.numel() for p in up.parameters()) / 1e6:.1f}M parameters, "
              f"{up.num_states} states of {up.dim}; batch {args.batch} x {args.seconds:g} s random audio", flush=True)
        wav, lengths, _, _ = make_batch("pr", 1, 1.0, 50, args.seed)
        print(f"frozen upstream run WITHOUT no_grad: last state {check_autograd_when_frozen(up, wav, lengths)} "
              f"(nothing recorded: the naive peer keeps the parameters requiring grad instead)", flush=True)
        del up
        for h in heads:
            r = bench_head(h, ckpt, args)
            report(r)
            results.append(r)
    print(f"load average after: {load()}", flush=True)
    if args.json:
        from wavlm.data.datadir import atomic_write_text

        atomic_write_text(args.json, json.dumps({"args": vars(args), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
