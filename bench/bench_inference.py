"""Inference speed and memory: our WavLM vs transformers.WavLMModel (eager), same random Base weights,
and the graph `python -m wavlm.bin.export --to onnx` writes, run by onnxruntime (CPU execution provider).

    tools/venv/bin/python bench/bench_inference.py [--reps 3] [--threads 2] [--cases 1x10,4x10,1x60]
                                                   [--no-onnx] [--no-memory]

Run it on an idle machine: the load average is printed first (a busy machine flatters us, because the
peer slows down more). Throughput (audio seconds per wall second) is measured in one process, the models
interleaved repetition by repetition (the best repetition of each is reported, and the ratios of the
bests to transformers). Peak memory is measured in a fresh subprocess per model and case: a sampler
thread reads the resident set size (/proc/self/statm) every millisecond during one forward, and the peak
minus the size just before the forward is reported (weights, input and libraries are excluded, so the
number is what the forward itself allocates). Outputs are compared (max abs diff over every hidden state:
ours vs transformers, onnxruntime vs ours). Then one more forward of ours runs under torch.profiler and
its wall time is split by the model's `wavlm.*` ranges (CNN, positional conv, bias and gates, attention,
feed-forward; "other" = layer norms, residuals, padding).
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


def build_onnx(ours, tmp: str, threads: int):
    """Our model exported with all hidden states, as an onnxruntime session (CPU, `threads` threads)."""
    import onnxruntime as ort

    from wavlm.models.onnx_export import export_onnx

    path = os.path.join(tmp, "wavlm.onnx")
    export_onnx(ours, path, layers="all")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def run_ort(sess, wav):
    lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
    return sess.run(None, {"wav": wav.numpy(), "lengths": lengths.numpy()})[:-1]


COMPONENTS = ("cnn", "pos_conv", "bias_gate", "attention", "ffn")


def component_split(ours, wav) -> dict[str, float]:
    """Wall seconds of one forward of ours by `wavlm.*` profiler range (see wavlm.models.wavlm.profile_scope)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        run_ours(ours, wav)
        total = time.perf_counter() - t
    split = dict.fromkeys(COMPONENTS, 0.0)
    for ev in prof.events():
        name = ev.name.removeprefix("wavlm.")
        if ev.name.startswith("wavlm.") and name in split:
            split[name] += ev.cpu_time_total / 1e6
    split["other"] = total - sum(split.values())
    split["total"] = total
    return split


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
    p.add_argument("--no-onnx", action="store_true", help="leave out onnxruntime")
    p.add_argument("--memory-child", choices=["hf", "ours"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.cases, args.threads)
        return
    load = os.getloadavg()
    torch.set_num_threads(args.threads)
    hf, ours = build()
    tmp = tempfile.TemporaryDirectory()
    sess = None if args.no_onnx else build_onnx(ours, tmp.name, args.threads)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, fp32, WavLM Base random weights; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores) before the run"
    )
    print(
        f"{'case':>6} {'hf s/s':>8} {'ours s/s':>9} {'ratio':>6} {'ort s/s':>8} {'ort ratio':>9} "
        f"{'hf MiB':>7} {'ours MiB':>9} {'mem ratio':>9} {'ours-hf':>9} {'ort-ours':>9}"
    )
    runners = {"hf": lambda w: run_hf(hf, w), "ours": lambda w: run_ours(ours, w)}
    if sess is not None:
        runners["ort"] = lambda w: run_ort(sess, w)
    splits = {}
    for case in args.cases.split(","):
        b, s = parse_case(case)
        torch.manual_seed(1)
        wav = torch.randn(b, int(s * 16000))
        audio = b * s
        times: dict[str, list[float]] = {k: [] for k in runners}
        with torch.inference_mode():
            ref, out = run_hf(hf, wav), run_ours(ours, wav)  # warm-up, and the comparison
            ref_states = tuple(ref.hidden_states[:-1]) + (ref.last_hidden_state,)
            diff = max(float((a - c).abs().max()) for a, c in zip(ref_states, out.hidden_states, strict=True))
            ort_diff = float("nan")
            if sess is not None:
                got = run_ort(sess, wav)
                ort_diff = max(
                    float(abs(torch.from_numpy(a) - c).max()) for a, c in zip(got, out.hidden_states, strict=True)
                )
            del ref, out, ref_states
            for r in range(args.reps):
                order = list(runners) if r % 2 == 0 else list(reversed(runners))
                for which in order:
                    gc.collect()
                    t = time.perf_counter()
                    runners[which](wav)
                    times[which].append(time.perf_counter() - t)
        speed = {k: audio / min(v) for k, v in times.items()}
        if args.no_memory:
            mh = mo = float("nan")
        else:
            mh, mo = measure_memory("hf", case, args.threads), measure_memory("ours", case, args.threads)
        ort_speed = speed.get("ort", float("nan"))
        print(
            f"{case:>6} {speed['hf']:8.2f} {speed['ours']:9.2f} {speed['ours'] / speed['hf']:6.2f} "
            f"{ort_speed:8.2f} {ort_speed / speed['hf']:9.2f} {mh:7.0f} {mo:9.0f} {mo / mh:9.2f} "
            f"{diff:9.2e} {ort_diff:9.2e}",
            flush=True,
        )
        reps = " ".join(f"{k} {[round(x, 2) for x in v]}" for k, v in times.items())
        print(f"       all reps (s): {reps}", flush=True)
        splits[case] = component_split(ours, wav)
    print("\nours, one forward under torch.profiler, wall ms by component (share of the total):")
    print(f"{'case':>6} " + " ".join(f"{c:>15}" for c in (*COMPONENTS, "other", "total")))
    for case, split in splits.items():
        cells = [f"{split[c] * 1e3:7.0f} ({split[c] / split['total']:4.0%})" for c in (*COMPONENTS, "other")]
        print(f"{case:>6} " + " ".join(f"{c:>15}" for c in cells) + f" {split['total'] * 1e3:15.0f}")
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
