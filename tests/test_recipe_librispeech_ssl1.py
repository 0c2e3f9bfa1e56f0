"""egs/librispeech/ssl1 end to end on a synthetic LibriSpeech with the debug configs: every stage runs,
a second run skips every stage, and the exported checkpoints load in our code and in transformers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import recipe_sandbox, run

import wavlm

pytestmark = pytest.mark.slow


def test_ssl1_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(corpus), "--seed", "1",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "3", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "4", "--lm_sentences", "10", "--no_finetuning"], env)
    recipe = recipe_sandbox(tmp_path, "librispeech/ssl1")
    args = ["./run.sh", "--librispeech_root", str(corpus / "LibriSpeech"), "--train_set", "train_clean_100",
            "--train_parts", "train_clean_100", "--nj", "2", "--km1_clusters", "8", "--km2_clusters", "8",
            "--km_percent", "1.0", "--km_layer", "1", "--iter1_config", "conf/debug/iter1.yaml",
            "--iter2_config", "conf/debug/iter2.yaml",
            "--train_args", "trainer.max_updates=4 trainer.save_interval_updates=2 trainer.valid_interval_updates=2"]
    first = run(args, env, cwd=recipe)
    for stage in range(1, 11):
        assert f"stage {stage}" in first.stderr
    exp = recipe / "exp"
    for it in ("iter1", "iter2"):
        assert (exp / it / "checkpoint_4.pt").is_file() and (exp / it / "tensorboard").is_dir()
        assert "valid at update 4" in (exp / it / "train.log").read_text()
        assert {"config.yaml", "cmd.txt", "versions.txt"} <= {p.name for p in (exp / it).iterdir()}
    labels = (recipe / "dump/km_iter1_l1_8/train_clean_100/km.txt").read_text().splitlines()
    assert len(labels) == 12 and all(0 <= int(x) < 8 for ln in labels for x in ln.split()[1:])

    stamps = {p: p.stat().st_mtime_ns for p in list(exp.rglob("*.pt")) + list((recipe / "dump").rglob("*.scp"))}
    second = run(args, env, cwd=recipe)
    assert "stage 9" in second.stderr
    assert "already trained for 4 updates" in (exp / "iter2" / "log" / "train.log").read_text()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed or rewritten

    # the exported checkpoints load in our code and in transformers with the same outputs
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32))
    ours = wavlm.load_model(str(exp / "iter2" / "checkpoint_best.pt")).eval()  # what the recipe exports
    official = wavlm.load_model(str(exp / "iter2" / "wavlm_official.pt")).eval()
    with torch.no_grad():
        a = ours.extract_features(wav).hidden_states
        b = official.extract_features(wav).hidden_states
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        from transformers import WavLMModel

        hf, info = WavLMModel.from_pretrained(str(exp / "iter2" / "hf"), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        hs = hf.eval()(wav, output_hidden_states=True).hidden_states
        assert (hs[1] - a[1]).abs().max() < 1e-4
