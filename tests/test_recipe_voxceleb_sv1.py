"""egs/voxceleb/sv1 end to end on a synthetic VoxCeleb (+ MUSAN, RIRs) with the debug configs: data and
trial lists, stage-1 and stage-2 training from a WavLM checkpoint, embeddings, cosine and AS-norm scoring;
a second run recomputes nothing; scoring with a Hugging Face WavLMForXVector dir."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, recipe_sandbox, run

from wavlm.metrics.sv import eer, read_trials
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig

pytestmark = pytest.mark.slow


def test_sv1_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    for c, extra in (("voxceleb", ["--num_speakers", "4", "--num_eval_speakers", "3", "--num_vox2_speakers", "4",
                                   "--videos_per_speaker", "2", "--utts_per_video", "2", "--num_trials", "20"]),
                     ("musan", []), ("rirs", [])):
        run(["python", "-m", "wavlm.bin.synth", "--corpus", c, "--out", str(corpus), "--seed", "3", *extra], env)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "wavlm.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    recipe = recipe_sandbox(tmp_path, "voxceleb/sv1")
    args = ["./run.sh", "--vox1_root", str(corpus / "voxceleb1"), "--vox2_root", str(corpus / "voxceleb2"),
            "--musan_root", str(corpus / "musan"), "--rirs_root", str(corpus / "RIRS_NOISES"),
            "--pretrained", str(tmp_path / "wavlm.pt"), "--sv_configs", "conf/debug/stage1.yaml conf/debug/stage2.yaml",
            "--nj", "2", "--cohort_speakers", "4", "--cohort_utts_per_spk", "3", "--top_n", "3",
            "--train_args", "trainer.max_updates=2 trainer.save_interval_updates=2 trainer.valid_interval_updates=2"]
    first = run(args, env, cwd=recipe)
    for stage in range(1, 5):
        assert f"stage {stage}" in first.stderr
    exp = recipe / "exp" / "sv_stage2"
    for d in ("1.stage1", "2.stage2"):
        assert (exp / d / "checkpoint_2.pt").is_file()
    assert "initialised from" in (exp / "2.stage2" / "train.log").read_text()
    for lst in ("vox1_O", "vox1_E", "vox1_H"):
        for norm in ("", "_asnorm"):
            # the EER of the scores written, against the trial list's labels, in its order (a model of 2 updates
            # scores near chance: tests/test_learning.py checks that speaker training learns)
            r = json.loads((exp / f"score_{lst}{norm}" / "result.json").read_text())
            trials = read_trials(recipe / "data" / "trials" / lst)
            rows = [ln.split() for ln in (exp / f"score_{lst}{norm}" / "scores").read_text().splitlines()]
            assert [(a, b) for a, b, _ in rows] == list(zip(trials.enroll, trials.test, strict=True))
            assert r["n_target"] == trials.labels.sum() > 0 and r["n_nontarget"] == (~trials.labels).sum() > 0
            assert r["eer"] == pytest.approx(eer(np.array([float(x) for *_, x in rows]), trials.labels)[0], abs=1e-3)
    assert "vox1_H" in (exp / "RESULTS.md").read_text()

    stamps = {p: p.stat().st_mtime_ns for p in list(exp.rglob("*.pt")) + list(exp.rglob("*.ark"))}
    run(args, env, cwd=recipe)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a Hugging Face WavLMForXVector dir scores the same trials without training
    from transformers import WavLMConfig as HFConfig
    from transformers import WavLMForXVector

    hf = WavLMForXVector(HFConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  conv_dim=(16,) * 7, num_buckets=32, max_bucket_distance=100,
                                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                                  tdnn_dim=(16, 16, 16, 16, 24), xvector_output_dim=12, num_labels=5))
    hf.save_pretrained(tmp_path / "hf_sv")
    run(args + ["--stage", "3", "--hf_xvector", str(tmp_path / "hf_sv"), "--trial_lists", "vox1_O"], env, cwd=recipe)
    r = json.loads((recipe / "exp" / "sv_hf_sv" / "score_vox1_O" / "result.json").read_text())
    assert r["n_target"] > 0
