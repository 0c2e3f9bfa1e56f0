"""egs/libricss/css1 end to end on a synthetic LibriCSS + LibriSpeech with the debug configs: data,
simulated mixtures, the spectral and the WavLM separators, continuous separation, decoding of every stream
with an ASR checkpoint, the utterance-wise WER table; a second run recomputes nothing; a missing ASR model
is named."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, recipe_sandbox, run

from wavlm.config import from_dict
from wavlm.data.tokenizer import train_tokenizer
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.asr import AsrConfig, AsrTask
from wavlm.train.trainer import Trainer

pytestmark = pytest.mark.slow


def test_css1_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(corpus), "--seed", "4",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "3", "--num_eval_speakers", "2",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "3", "--lm_sentences", "10", "--no_finetuning"], env)
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "libricss", "--out", str(corpus), "--seed", "4",
         "--conditions", "0S,OV10", "--num_sessions", "1", "--session_utts", "4"], env)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "wavlm.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    recipe = recipe_sandbox(tmp_path, "libricss/css1")
    args = ["./run.sh", "--libricss_root", str(corpus / "LibriCSS"), "--librispeech_root", str(corpus / "LibriSpeech"),
            "--pretrained", str(tmp_path / "wavlm.pt"), "--conditions", "0S OV10", "--nj", "2",
            "--css_configs", "conf/debug/css_stft.yaml conf/debug/css_wavlm.yaml", "--num_train", "6", "--num_dev", "2",
            "--train_args", "trainer.max_updates=2 trainer.save_interval_updates=2 trainer.valid_interval_updates=2"]
    first = run(args + ["--stop_stage", "4"], env, cwd=recipe)
    for stage in range(1, 5):
        assert f"stage {stage}" in first.stderr
    for sys in ("css_stft", "css_wavlm"):
        # validation reports an SI-SDRi (2 updates do not separate: tests/test_learning.py checks that training does)
        sdri = re.findall(r"valid at update 2 \|.* si_sdri (\S+)", (recipe / "exp" / sys / "train.log").read_text())
        assert sdri and np.isfinite(float(sdri[-1])), sdri
        assert (recipe / "exp" / f"sep_{sys}" / "OV10" / "stream1" / "segments").is_file()

    bad = run(args + ["--stage", "5", "--asr_model", str(tmp_path / "nope.pt")], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "nope.pt" in bad.stderr

    # a (barely trained) ASR model of the LibriSpeech utterances the mixtures came from
    units = tmp_path / "units"
    texts = (recipe / "data" / "train_clean_100" / "text").read_text().splitlines()
    train_tokenizer([t.split(" ", 1)[1] for t in texts], units)
    data = recipe / "data" / "train_clean_100"
    cfg = from_dict(AsrConfig, {"model": {"preset": "debug"},
                                "data": {"train": str(data), "valid": str(data), "tokenizer": str(units)},
                                "trainer": {"max_updates": 1, "num_workers": 0}})
    task = AsrTask(cfg)
    Trainer(cfg.trainer, task, task.build_model(), tmp_path / "asr").train()
    asr = ["--asr_model", str(tmp_path / "asr" / "checkpoint_last.pt")]
    run(args + asr, env, cwd=recipe)
    table = (recipe / "exp" / "RESULTS.md").read_text()
    for sys in ("nosep", "css_stft", "css_wavlm"):
        assert f"| {sys} |" in table
    assert "| 0S | 0L | OV10 |" in table

    stamps = {p: p.stat().st_mtime_ns for p in list((recipe / "exp").rglob("*.pt")) +
              list((recipe / "exp").rglob("*.wav")) + list((recipe / "exp").rglob("text"))}
    run(args + asr, env, cwd=recipe)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
