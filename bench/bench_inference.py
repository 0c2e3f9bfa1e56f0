"""Inference speed and memory: our WavLM vs transformers.WavLMModel (eager), same random Base weights.

    tools/venv/bin/python bench/bench_inference.py [--reps 3] [--threads 2] [--cases 1x10,4x10,1x60]

Throughput (audio seconds per wall second) is measured in one process, the two models interleaved
repetition by repetition (the machine may be shared; the best repetition of each is reported, and the
ratio of the bests). Peak memory is measured in a fresh subprocess per model and case: a sampler thread
reads the resident set size (/proc/self/statm) every millisecond during one forward, and the peak minus
the size just before the forward is reported (weights, input and libraries are excluded, so the number
is what the forward itself allocates). Outputs are compared (max abs diff of every hidden state).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def build(seed: int = 0):
    import transformers

    from wavlm.models.checkpoint import cfg_from_hf, hf_to_official, load_weights
    from wavlm.models.wavlm import WavLM

    torch.manual_seed(seed)
    hc = transformers.WavLMConfig()  # Base: 12 layers, 768 dims, group-norm CNN, post-LN
    hf = transformers.WavLMModel(hc).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():  # random gates and relative bias too
            if "rel_attn_embed" in name or "gru_rel_pos_const" in name:
                p.copy_(torch.randn_like(p))
    cfg = cfg_from_hf(hc.to_dict(), do_normalize=False)
    ours = WavLM(cfg).eval()
    load_weights(ours, hf_to_official(hf.state_dict(), cfg.extractor_mode), "bench")
    return hf, ours


def run_hf(hf, wav):
    return hf(wav, output_hidden_states=True)


def run_ours(ours, wav):
    return ours.extract_features(wav)


def parse_case(case: str) -> tuple[int, float]:
    b, s = case.lower().split("x")
    return int(b), float(s)


def memory_child(which: str, case: str, threads: int) -> None:
    torch.set_num_threads(threads)
    hf, ours = build()
    model = hf if which == "hf" else ours
    other = ours if which == "hf" else hf
    del other
    gc.collect()
    b, s = parse_case(case)
    wav = torch.randn(b, int(s * 16000))
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    peak, stop = [0], [False]

    def sample() -> None:
        while not stop[0]:
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    base = rss()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    with torch.inference_mode():
        (run_hf if which == "hf" else run_ours)(model, wav)
    stop[0] = True
    th.join()
    print(json.dumps({"peak_delta_mib": (max(peak[0], rss()) - base) / 2**20, "base_mib": base / 2**20}))


def measure_memory(which: str, case: str, threads: int) -> float:
    out = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--memory-child",
            which,
            "--cases",
            case,
            "--threads",
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_delta_mib"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="1x10,4x10,1x60", help="comma-separated BATCHxSECONDS")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--memory-child", choices=["hf", "ours"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.cases, args.threads)
        return
    torch.set_num_threads(args.threads)
    hf, ours = build()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fp32, WavLM Base random weights")
    print(
        f"{'case':>6} {'hf s/s':>8} {'ours s/s':>9} {'ratio':>6} {'hf MiB':>8} {'ours MiB':>9} "
        f"{'mem ratio':>9} {'max|diff|':>10}"
    )
    for case in args.cases.split(","):
        b, s = parse_case(case)
        torch.manual_seed(1)
        wav = torch.randn(b, int(s * 16000))
        audio = b * s
        times: dict[str, list[float]] = {"hf": [], "ours": []}
        with torch.inference_mode():
            ref, out = run_hf(hf, wav), run_ours(ours, wav)  # warm-up, and the comparison
            ref_states = tuple(ref.hidden_states[:-1]) + (ref.last_hidden_state,)
            diff = max(float((a - c).abs().max()) for a, c in zip(ref_states, out.hidden_states, strict=True))
            del ref, out, ref_states
            for r in range(args.reps):
                order = ("hf", "ours") if r % 2 == 0 else ("ours", "hf")
                for which in order:
                    gc.collect()
                    t = time.perf_counter()
                    (run_hf if which == "hf" else run_ours)(hf if which == "hf" else ours, wav)
                    times[which].append(time.perf_counter() - t)
        thf, tours = audio / min(times["hf"]), audio / min(times["ours"])
        if args.no_memory:
            mh = mo = float("nan")
        else:
            mh, mo = measure_memory("hf", case, args.threads), measure_memory("ours", case, args.threads)
        print(
            f"{case:>6} {thf:8.2f} {tours:9.2f} {tours / thf:6.2f} {mh:8.0f} {mo:9.0f} {mo / mh:9.2f} "
            f"{diff:10.2e}",
            flush=True,
        )
        print(
            f"       all reps (s): hf {[round(x, 2) for x in times['hf']]} "
            f"ours {[round(x, 2) for x in times['ours']]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
