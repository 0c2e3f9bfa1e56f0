"""Smoke runs of the inference benchmarks (tiny cases): they keep running, and what they compare agrees.
The speed numbers themselves are measured by hand on an idle machine (README), never asserted here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bench(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_inference_smoke() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("onnxruntime")
    out = run_bench("bench_inference.py", "--cases", "1x1", "--reps", "1", "--threads", "1", "--no-memory")
    assert "load average" in out
    row = next(line.split() for line in out.splitlines() if line.strip().startswith("1x1 "))
    hf, ours, ratio, ort = (float(x) for x in row[1:5])
    assert hf > 0 and ours > 0 and ort > 0 and ratio == pytest.approx(ours / hf, rel=0.02)
    ours_vs_hf, ort_vs_ours = float(row[-2]), float(row[-1])
    assert ours_vs_hf < 1e-4 and ort_vs_ours < 1e-4
    split = next(line.split() for line in out.splitlines()[::-1] if line.strip().startswith("1x1 "))
    ms = [float(x) for x in re.findall(r"(\d+) \(", " ".join(split))]
    assert len(ms) == 6 and ms[0] > 0 and ms[3] > 0 and ms[4] > 0  # cnn, attention, ffn seen by the profiler


def test_bench_dump_features_smoke() -> None:
    out = run_bench("bench_dump_features.py", "--small", "--reps", "1", "--threads", "1")
    assert re.search(r"ratio dump / bare: \d+\.\d+", out)
    diff = float(re.search(r"max abs difference dump vs bare features: (\S+)", out).group(1))
    assert diff < 1e-4
