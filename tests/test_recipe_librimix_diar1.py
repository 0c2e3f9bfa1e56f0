"""egs/librimix/diar1 end to end on synthetic data with the debug config: Libri2Mix-style mixtures simulated from a
synthetic LibriSpeech and MUSAN (stage 1's simulation path), SD trained on a tiny random WavLM and on filterbanks,
diarization, DER tuned on dev and applied to test; every result.json is the DER of the RTTM files it names,
recomputed here with pyannote.metrics; the table holds those numbers; a Hugging Face frame classifier dir (our
linear-head model exported) runs through the same stages without training; a second run recomputes nothing. The
real LibriMix layout (synth --corpus librimix, 6-column csv) goes through stage 1 too."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SMALL_MODEL, recipe_sandbox, run
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig

pytestmark = pytest.mark.slow

DEBUG = ["--sd_config", "conf/debug/sd.yaml", "--ngpu", "0", "--nj", "1"]


def rttm_annotations(path: Path) -> dict[str, Annotation]:
    """Our own reading of an RTTM file (not wavlm.data.rttm), into pyannote annotations."""
    out: dict[str, Annotation] = {}
    for line in path.read_text().splitlines():
        f = line.split()
        a = out.setdefault(f[1], Annotation(uri=f[1]))
        a[Segment(float(f[3]), float(f[3]) + float(f[4])), len(a)] = f[7]
    return out


def der(ref_file: Path, hyp_file: Path) -> float:
    ref, hyp = rttm_annotations(ref_file), rttm_annotations(hyp_file)
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    for reco, r in ref.items():
        h = hyp.get(reco, Annotation(uri=reco))
        extent = r.get_timeline().union(h.get_timeline()).extent()
        metric(r, h, uem=extent)
    return 100 * abs(metric)


def table_row(path: Path, name: str) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0] == name:
            return dict(zip(header[1:], cells[1:], strict=True))
    raise AssertionError(f"no row {name} in {path}")


def test_diar1_end_to_end_and_idempotent(tmp_path, env):
    env = {**env, "OMP_NUM_THREADS": "1"}
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librimix", "--out", str(corpus), "--seed", "3",
         "--librimix_mixtures", "12,4,4", "--librimix_columns", "6"], env)
    torch.manual_seed(0)
    upstream = tmp_path / "tiny_wavlm.pt"
    save_checkpoint(upstream, WavLM(WavLMConfig(**SMALL_MODEL)))
    recipe = recipe_sandbox(tmp_path, "librimix/diar1")
    sim = ["./run.sh", "--librispeech_root", str(corpus / "LibriSpeech"), "--musan_root", str(corpus / "musan"),
           "--num_mixtures", "12 4 4", *DEBUG]
    first = run([*sim, "--upstream", str(upstream)], env, cwd=recipe)
    for stage in range(1, 6):
        assert f"stage {stage}:" in first.stderr
    assert (recipe / "dump" / "simulated" / "Libri2Mix" / "wav16k" / "max" / "metadata").is_dir()
    fbank = run([*sim, "--upstream", "fbank", "--stage", "2", "--train_args", "upstream.normalize=true"], env,
                cwd=recipe)
    exp = recipe / "exp"

    # a linear head exported as a Hugging Face WavLMForAudioFrameClassification dir, diarized without training
    run([*sim, "--upstream", str(upstream), "--tag", "linear", "--stage", "2", "--stop_stage", "2",
         "--train_args", "head.rnn_layers=0"], env, cwd=recipe)
    run(["python", "-m", "wavlm.bin.export", "--to", "hf_frame_classifier",
         str(exp / "linear" / "sd" / "checkpoint_best.pt"), str(tmp_path / "hf_sd")], env)
    hf = run([*sim, "--frame_classifier", str(tmp_path / "hf_sd"), "--tag", "hf_sd", "--stage", "3"], env, cwd=recipe)
    assert "stage 2:" not in hf.stderr and not (exp / "hf_sd" / "sd" / "log" / "train.log").exists()

    results = {}
    for tag in ("tiny_wavlm", "fbank", "hf_sd"):
        for s in ("dev", "test"):
            r = json.loads((exp / tag / "sd" / "scoring" / s / "result.json").read_text())
            assert (r["task"], r["metric"], r["set"], r["tag"]) == ("sd", "der", s, tag)
            hyp, ref = recipe / r["hyp_rttm"], recipe / r["ref_rttm"]  # relative to the recipe dir
            assert ref == recipe / "data" / s / "rttm"
            assert r["der"] == r["value"] == pytest.approx(der(ref, hyp), abs=0.01)
            assert r["der"] == pytest.approx(r["missed"] + r["false_alarm"] + r["confusion"], abs=0.01)
            assert r["threshold"] in (0.3, 0.4, 0.5, 0.6, 0.7) and r["median"] in (1, 11)
        results[tag] = r["der"]
        assert list((exp / tag / "sd" / "scoring" / "test").glob("activity_*.png"))
        assert "| **overall** |" in (exp / tag / "sd" / "scoring" / "RESULTS.md").read_text()
    best = torch.load(exp / "tiny_wavlm" / "sd" / "checkpoint_best.pt", weights_only=False)
    assert best["validation"]["metric"] == "der" and best["validation"]["updates"] in (2, 4)

    # the table (stage 5) holds these numbers beside the paper's
    for tag, value in results.items():
        assert table_row(exp / "RESULTS.md", tag)["SD DER↓"] == f"{value:.2f}"
    assert table_row(exp / "RESULTS.md", "paper: WavLM Large")["SD DER↓"] != "not run"
    assert (exp / "RESULTS.md").read_text() in hf.stdout

    # a second run trains, diarizes and scores nothing again
    kept = [*exp.rglob("*.pt"), *exp.rglob("result.json"), *exp.rglob("posteriors.ark"),
            *(recipe / "data").rglob("rttm")]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    second = run([*sim, "--upstream", str(upstream)], env, cwd=recipe)
    assert "not diarized again" in second.stderr and "not scored again" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == stamps
    assert fbank.returncode == 0


def test_diar1_reads_the_real_librimix_layout(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librimix", "--out", str(corpus), "--seed", "4",
         "--librimix_mixtures", "4,2,2"], env)
    recipe = recipe_sandbox(tmp_path, "librimix/diar1")
    run(["./run.sh", "--librimix_root", str(corpus), "--stop_stage", "1"], env, cwd=recipe)
    for s in ("train_100", "dev", "test"):
        recos = (recipe / "data" / s / "wav.scp").read_text().splitlines()
        assert len(recos) == {"train_100": 4, "dev": 2, "test": 2}[s]
        assert set(rttm_annotations(recipe / "data" / s / "rttm")) == {ln.split()[0] for ln in recos}
    missing = run(["./run.sh", "--stop_stage", "1"], env, cwd=recipe, check=False)
    assert missing.returncode != 0 and "--librimix_root" in missing.stderr
