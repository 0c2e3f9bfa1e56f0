"""egs/librispeech/superb1 end to end on a synthetic LibriSpeech (with its librispeech_lm/ lexicon) and the debug
configs: SUPERB PR and ASR on a tiny random WavLM checkpoint, then PR on the fbank upstream; each result.json is the
PER/WER of its hypotheses recomputed here, the layer weights are a distribution over the upstream's hidden states,
the SUPERB table holds exactly those numbers, and a second run recomputes nothing. A missing lexicon or a task the
recipe does not run is an error naming the option to give."""
from __future__ import annotations

import json
import math
from pathlib import Path

import editdistance
import pytest
import torch
from conftest import SMALL_MODEL, recipe_sandbox, run

from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig

pytestmark = pytest.mark.slow

DEBUG = ["--pr_config", "conf/debug/pr.yaml", "--asr_config", "conf/debug/asr.yaml", "--ngpu", "0"]


def read_kaldi_text(path: Path) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        utt, *tokens = line.split()
        out[utt] = tokens
    return out


def error_rate(ref_file: Path, hyp_file: Path) -> float:
    """Token error rate in % (words for ASR, phones for PR), by editdistance on the token lists."""
    ref, hyp = read_kaldi_text(ref_file), read_kaldi_text(hyp_file)
    assert sorted(hyp) == sorted(ref), f"{hyp_file}: not the utterances of {ref_file}"
    errors = sum(editdistance.eval(ref[u], hyp[u]) for u in ref)
    return 100.0 * errors / sum(len(r) for r in ref.values())


def table_rows(path: Path) -> dict[str, dict[str, str]]:
    """The SUPERB.md table: {upstream: {column header: cell}}."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[1:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def test_superb1_pr_asr_end_to_end_and_idempotent(tmp_path, env):
    # one torch thread per job: with every core busy (other tests), the BiLSTM's many small parallel ops wait on
    # descheduled threads (ASR training measured 53 s with the default threads and 15 s with one)
    env = {**env, "OMP_NUM_THREADS": "1"}
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(corpus), "--seed", "2",
         "--subsets", "train-clean-100,dev-clean,test-clean", "--num_speakers", "3", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "4", "--lm_sentences", "20", "--no_finetuning"], env)
    torch.manual_seed(0)
    upstream = tmp_path / "tiny_wavlm.pt"
    save_checkpoint(upstream, WavLM(WavLMConfig(**SMALL_MODEL)))
    recipe = recipe_sandbox(tmp_path, "librispeech/superb1")
    args = ["./run.sh", "--librispeech_root", str(corpus / "LibriSpeech"), *DEBUG]
    wavlm_run = [*args, "--upstream", str(upstream)]
    first = run(wavlm_run, env, cwd=recipe)
    for stage in range(1, 6):
        assert f"stage {stage}:" in first.stderr
    fbank = run([*args, "--upstream", "fbank", "--tasks", "pr"], env, cwd=recipe)
    assert "stage 3: pr on fbank" in fbank.stderr and "stage 3: asr" not in fbank.stderr

    data, exp = recipe / "data", recipe / "exp"
    # the phone data dirs: the lexicon's pronunciation of every word of each transcript
    lexicon = {}
    for line in (corpus / "librispeech_lm" / "librispeech-lexicon.txt").read_text().splitlines():
        word, phones = line.split("\t")
        lexicon.setdefault(word, phones.split())
    words, phones = read_kaldi_text(data / "test_clean" / "text"), read_kaldi_text(data / "pr" / "test_clean" / "text")
    assert phones == {u: [p for w in ws for p in lexicon[w]] for u, ws in words.items()}
    assert (exp / "units_phone" / "tokens.txt").is_file() and (exp / "units_char" / "tokens.txt").is_file()
    assert "--device cpu" in (exp / "tiny_wavlm" / "asr" / "cmd.txt").read_text()  # --ngpu 0: no GPU even if there

    runs = {("tiny_wavlm", "pr"): SMALL_MODEL["encoder_layers"] + 1, ("tiny_wavlm", "asr"): SMALL_MODEL[
        "encoder_layers"] + 1, ("fbank", "pr"): 1}  # hidden states of each upstream: L + 1, fbank's one
    results = {}
    for (tag, task), states in runs.items():
        d = exp / tag / task
        ref = data / ("pr" if task == "pr" else "") / "test_clean" / "text"
        r = json.loads((d / "test_clean" / "result.json").read_text())
        # the value is the error rate of the written hypotheses, recomputed here
        assert (r["task"], r["metric"], r["tag"], r["set"]) == (task, {"pr": "per", "asr": "wer"}[task], tag,
                                                                "test_clean")
        assert r["value"] == pytest.approx(error_rate(ref, d / "test_clean" / "hyp"), abs=1e-3)
        # evaluated with the best checkpoint by dev PER/WER (validated at updates 2 and 4)
        assert Path(r["checkpoint"]) == (d / "checkpoint_best.pt").resolve()
        best = torch.load(d / "checkpoint_best.pt", weights_only=False)
        assert best["validation"]["updates"] in (2, 4)
        assert best["validation"]["metric"] == {"pr": "per", "asr": "wer"}[task]
        # one softmax weight per hidden state of the upstream, the same as in the result
        weights = [float(ln.split()[1]) for ln in (d / "layer_weights.txt").read_text().splitlines()]
        assert len(weights) == states and math.isclose(sum(weights), 1.0, abs_tol=1e-4)
        assert weights == pytest.approx(r["layer_weights"], abs=1e-6)
        assert (d / "layer_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"{d.relative_to(recipe)}/layer_weights.png" in fbank.stderr
        results[tag, task] = r["value"]

    # the table holds these numbers, one row per upstream, beside the paper's rows
    rows = table_rows(exp / "SUPERB.md")
    assert rows["tiny_wavlm"]["PR PER↓"] == f"{results['tiny_wavlm', 'pr']:.2f}"
    assert rows["tiny_wavlm"]["ASR WER↓"] == f"{results['tiny_wavlm', 'asr']:.2f}"
    assert rows["fbank"]["PR PER↓"] == f"{results['fbank', 'pr']:.2f}" and rows["fbank"]["ASR WER↓"] == "not run"
    assert rows["tiny_wavlm"]["SID Acc↑"] == "not run" and "paper: WavLM Base" in rows
    assert (exp / "SUPERB.md").read_text() in fbank.stdout  # stage 5 prints it

    # a second run trains and evaluates nothing again
    kept = [*exp.rglob("*.pt"), *exp.rglob("result.json"), *exp.rglob("hyp"), *(data / "pr").rglob("text")]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    second = run(wavlm_run, env, cwd=recipe)
    assert "stage 5:" in second.stderr and second.stderr.count("not evaluated again") == 2
    for task in ("pr", "asr"):
        assert "already trained for 4 updates" in (exp / "tiny_wavlm" / task / "log" / "train.log").read_text()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # ASR alone needs no lexicon; a checkpoint that was not made is named with how to get it
    run([*wavlm_run, "--stage", "2", "--stop_stage", "2", "--tasks", "asr", "--lexicon", str(tmp_path / "no")], env,
        cwd=recipe)
    bad = run([*wavlm_run, "--stage", "4", "--stop_stage", "4", "--checkpoint", "avg"], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "checkpoint_avg.pt" in bad.stderr and "trainer.average_best" in bad.stderr


def test_superb1_missing_lexicon_or_unknown_task_is_named(tmp_path, env):
    recipe = recipe_sandbox(tmp_path, "librispeech/superb1")
    root = tmp_path / "LibriSpeech"
    root.mkdir()
    stage2 = ["./run.sh", "--librispeech_root", str(root), "--stage", "2", "--stop_stage", "2"]
    bad = run(stage2, env, cwd=recipe, check=False)  # the default: librispeech_lm/ beside LibriSpeech/
    assert bad.returncode != 0
    assert f"{root}/../librispeech_lm/librispeech-lexicon.txt" in bad.stderr and "--lexicon" in bad.stderr
    bad = run([*stage2, "--lexicon", str(tmp_path / "nope.txt")], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "nope.txt" in bad.stderr and "--lexicon" in bad.stderr
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("HELLO\tHH AH0 L OW1\n")
    bad = run([*stage2, "--lexicon", f"{lexicon} {tmp_path}/second.txt"], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and f"'{tmp_path}/second.txt'" in bad.stderr  # several lexicons: each checked
    assert not (recipe / "data").exists()  # nothing was made
    bad = run([*stage2, "--tasks", "pr sid"], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "'sid'" in bad.stderr and "egs/voxceleb/superb1" in bad.stderr
    bad = run(["./run.sh", "--librispeech_root", str(root), "--stage", "3"], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "--upstream" in bad.stderr
