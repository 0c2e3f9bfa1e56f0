"""egs/voxceleb/superb1 end to end on a synthetic VoxCeleb1 with the debug configs: SID and ASV on a frozen tiny
random WavLM, SID on the fbank upstream; each result.json checked against its own hypotheses or scores, the layer
weights, the SUPERB table against the results; a second run recomputes nothing. (A model of 4 updates is near
chance: tests/test_superb*.py and tests/test_learning.py check that the heads learn.)"""
from __future__ import annotations

import json
import re

import kaldiio
import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, recipe_sandbox, run

from wavlm.metrics.sv import eer, read_trials
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig

pytestmark = pytest.mark.slow


def read_table(path) -> dict[str, dict[str, str]]:
    """Rows of SUPERB.md: upstream -> {column name: cell}."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(cols[1:], cells[1:], strict=True))
    return rows


def check_sid(recipe, out) -> float:
    r = json.loads((out / "result.json").read_text())
    ref = dict(ln.split() for ln in (recipe / "data" / "sid_test" / "utt2spk").read_text().splitlines())
    hyp = dict(ln.split() for ln in (out / "hyp").read_text().splitlines())
    assert sorted(hyp) == sorted(ref) and len(ref) > 0
    acc = 100.0 * sum(hyp[u] == s for u, s in ref.items()) / len(ref)
    assert r["task"] == "sid" and r["metric"] == "acc" and r["value"] == pytest.approx(acc, abs=1e-3)
    return r["value"]


def check_asv(recipe, out) -> float:
    """The EER of the trial list's cosine scores, recomputed here from the written embeddings; the written scores
    are those to their 6 decimals. (The EER of the 6-decimal scores file itself can differ: an untrained x-vector
    head on a random WavLM gives cosines of 0.99999x, which the rounding ties.)"""
    r = json.loads((out / "result.json").read_text())
    trials = read_trials(recipe / "data" / "trials" / "vox1_O")
    rows = [ln.split() for ln in (out / "scores").read_text().splitlines()]
    assert [(a, b) for a, b, _ in rows] == list(zip(trials.enroll, trials.test, strict=True))
    emb = {u: np.asarray(v, dtype=np.float64) for u, v in kaldiio.load_ark(str(out / "emb.ark"))}
    assert sorted(emb) == sorted((recipe / "data" / "vox1_test" / "utt2spk").read_text().split()[::2])
    unit = {u: v / np.linalg.norm(v) for u, v in emb.items()}
    cos = np.array([unit[e] @ unit[t] for e, t in zip(trials.enroll, trials.test, strict=True)])
    assert np.abs(np.array([float(x) for *_, x in rows]) - cos).max() <= 5.1e-7
    assert r["n_target"] == trials.labels.sum() > 0 and r["n_nontarget"] == (~trials.labels).sum() > 0
    assert r["task"] == "asv" and r["metric"] == "eer"
    assert r["value"] == pytest.approx(eer(cos, trials.labels)[0], abs=1e-3)
    return r["value"]


def check_layer_weights(d, num_states: int) -> None:
    rows = [ln.split() for ln in (d / "layer_weights.txt").read_text().splitlines()]
    assert [int(i) for i, _ in rows] == list(range(num_states))
    w = np.array([float(x) for _, x in rows])
    assert (w > 0).all() and w.sum() == pytest.approx(1.0, abs=1e-5)
    assert (d / "layer_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_superb1_sid_asv_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "voxceleb", "--out", str(corpus), "--seed", "3",
         "--num_speakers", "4", "--num_eval_speakers", "3", "--num_vox2_speakers", "0", "--videos_per_speaker", "3",
         "--utts_per_video", "2", "--num_trials", "20"], env)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "wavlm.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    recipe = recipe_sandbox(tmp_path, "voxceleb/superb1")
    common = ["./run.sh", "--vox1_root", str(corpus / "voxceleb1"), "--sid_config", "conf/debug/sid.yaml",
              "--asv_config", "conf/debug/asv.yaml"]
    runs = [common + ["--upstream", str(tmp_path / "wavlm.pt")], common + ["--upstream", "fbank", "--tasks", "sid"]]
    first = [run(args, env, cwd=recipe) for args in runs]
    for stage in range(1, 5):
        assert f"stage {stage}:" in first[0].stderr
    assert "training asv" in first[0].stderr and "training asv" not in first[1].stderr
    for name in ("sid_train", "sid_dev", "sid_test", "vox1_dev", "vox1_test"):
        assert (recipe / "data" / name / "utt2dur").is_file()
    assert not (recipe / "data" / "train").exists()

    exp = recipe / "exp"
    values = {("wavlm", "sid"): check_sid(recipe, exp / "wavlm" / "sid" / "sid_test"),
              ("wavlm", "asv"): check_asv(recipe, exp / "wavlm" / "asv" / "vox1_O"),
              ("fbank", "sid"): check_sid(recipe, exp / "fbank" / "sid" / "sid_test")}
    assert not (exp / "fbank" / "asv").exists()
    for task in ("sid", "asv"):
        check_layer_weights(exp / "wavlm" / task, SMALL_MODEL["encoder_layers"] + 1)
    check_layer_weights(exp / "fbank" / "sid", 1)
    # SID validated on sid_dev (its accuracy chose checkpoint_best); ASV on held-out vox1_dev utterances (loss)
    assert re.search(r"valid at update 4 \| loss [0-9.]+ \| acc", (exp / "wavlm" / "sid" / "train.log").read_text())
    assert "data/vox1_dev" in (exp / "wavlm" / "asv" / "config.yaml").read_text()

    table = read_table(exp / "SUPERB.md")
    columns = {"sid": "SID Acc↑", "asv": "ASV EER↓"}
    for (tag, task), v in values.items():
        assert float(table[tag][columns[task]]) == pytest.approx(v, abs=0.0051)
    assert table["fbank"]["ASV EER↓"] == "not run" and table["wavlm"]["PR PER↓"] == "not run"
    assert "layer_weights.png" in first[0].stderr

    # a second run recomputes nothing: checkpoints, embeddings, hypotheses, scores, results and the table stay
    # (layer_weights.png is redrawn by train_superb on every call; its content is checked above)
    outputs = [p for p in exp.rglob("*") if p.is_file() and (
        p.suffix in (".pt", ".ark", ".scp", ".json", ".md") or p.name in ("hyp", "scores", "layer_weights.txt"))]
    assert len(outputs) > 10
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    second = [run(args, env, cwd=recipe) for args in runs]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert "not evaluated again" in second[0].stderr and "already trained" in (exp / "wavlm" / "asv" /
                                                                              "train.log").read_text()

    # another --checkpoint is evaluated even though the result.json of the best one is newer than it
    third = run(runs[1] + ["--stage", "3", "--stop_stage", "3", "--checkpoint", "last"], env, cwd=recipe)
    assert "stage 3: evaluating" in third.stderr
    r = json.loads((exp / "fbank" / "sid" / "sid_test" / "result.json").read_text())
    assert r["checkpoint"].endswith("/checkpoint_last.pt")
    check_sid(recipe, exp / "fbank" / "sid" / "sid_test")
