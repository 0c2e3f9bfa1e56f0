"""egs/librispeech/asr1 end to end on a synthetic LibriSpeech with the debug configs: data (with the
Libri-light limited-supervision sets), units, LM, CTC fine-tuning, CTC log posteriors stored once per
set, greedy and LM beam-search decoding from them, WER; a second run
recomputes nothing; a missing input fails with a message naming it."""
from __future__ import annotations

import json

import pytest
from conftest import recipe_sandbox, run

from wavlm.metrics.wer import read_text, score

pytestmark = pytest.mark.slow


def test_asr1_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(corpus), "--seed", "2",
         "--subsets", "train-clean-100,dev-clean,test-clean", "--num_speakers", "3", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "4", "--lm_sentences", "50"], env)
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    args = ["./run.sh", "--librispeech_root", str(corpus / "LibriSpeech"), "--train_set", "train_clean_100",
            "--valid_set", "dev_clean", "--test_sets", "dev_clean test_clean", "--nj", "2",
            "--asr_config", "conf/debug/finetune.yaml", "--lm_config", "conf/debug/lm.yaml", "--beam_size", "2",
            "--train_args", "trainer.max_updates=3 trainer.save_interval_updates=2 trainer.valid_interval_updates=2",
            "--lm_args", "trainer.max_updates=3 trainer.save_interval_updates=3 trainer.valid_interval_updates=3",
            "--word_lm_config", "conf/debug/lm_word.yaml", "--word_lm_args",
            "trainer.max_updates=3 trainer.save_interval_updates=3 trainer.valid_interval_updates=3",
            "--tune_sets", "dev_clean", "--lexicon_beam", "20", "--kenlm_grid", "kenlm_weight=0,2 word_score=-1,0",
            "--word_lm_grid", "word_lm_weight=0,1 word_lm_word_score=0", "--nbest", "5"]
    first = run(args, env, cwd=recipe)
    for stage in range(1, 7):
        assert f"stage {stage}" in first.stderr
    data = recipe / "data"
    # Libri-light limited supervision sets beside the LibriSpeech subsets
    assert {"train_clean_100", "dev_clean", "test_clean", "train_10min", "train_1h", "train_10h"} <= {
        p.name for p in data.iterdir()}
    exp = recipe / "exp" / "asr_finetune_scratch"
    assert (exp / "checkpoint_3.pt").is_file() and "valid at update 3" in (exp / "train.log").read_text()
    # decoding uses the model with the best validation WER (validated at updates 2 and 3), not the last one
    import torch

    best = torch.load(exp / "checkpoint_best.pt", weights_only=True)["validation"]
    assert best["metric"] == "wer" and best["updates"] in (2, 3)
    assert f"with {exp.relative_to(recipe)}/checkpoint_best.pt" in first.stderr
    assert (recipe / "exp" / "units_char" / "tokens.txt").read_text().startswith("<blank>\n")
    for s in ("dev_clean", "test_clean"):  # the encoder ran once per set; both decodings read its log posteriors
        lp = exp / "logprobs" / s
        assert (lp / "tokens.txt").read_text().startswith("<blank>\n") and (lp / "logprobs.scp").is_file()
        assert f"decoding {s} (beam 2 + token LM, weight 0.5)" in first.stderr
    # the 4-gram lexicon beam: its lexicon spelled from the 4-gram's words, weights tuned on dev_clean (the
    # grid's 4 points scored, the best one applied to both sets), then rescored by the word Transformer LM
    lexicon = {ln.split("\t")[0] for ln in (recipe / "exp" / "lexicon_units_char.txt").read_text().splitlines()}
    assert len(lexicon) > 100
    tuned = json.loads((exp / "tune_4gram" / "dev_clean" / "best.json").read_text())
    assert set(tuned["options"]) == {"kenlm_weight", "word_score"}
    assert len((exp / "tune_4gram" / "dev_clean" / "grid.tsv").read_text().splitlines()) == 5
    assert (exp / "tune_4gram_tlm" / "dev_clean" / "best.json").is_file()
    assert "tuned on dev_clean" in first.stderr and (recipe / "exp" / "lm_word" / "checkpoint_best.pt").is_file()
    for s in ("dev_clean", "test_clean"):
        for d in ("4gram", "4gram_tlm"):
            words = {w for ln in (exp / f"decode_{d}" / s / "text").read_text().splitlines() for w in ln.split()[1:]}
            assert words <= lexicon  # only lexicon words
    for d in ("greedy", "beam2_lm0.5", "4gram", "4gram_tlm"):
        for s in ("dev_clean", "test_clean"):
            hyp = (exp / f"decode_{d}" / s / "text").read_text().splitlines()
            ref = (data / s / "text").read_text().splitlines()
            assert [h.split()[0] for h in hyp] == [r.split()[0] for r in ref]
            # the WER of these hypotheses against this set's transcripts (a model of 3 updates is no better
            # than chance: tests/test_learning.py checks that fine-tuning learns)
            res = score(read_text(data / s / "text"), read_text(exp / f"decode_{d}" / s / "text"))
            assert (exp / f"decode_{d}" / s / "wer" / "result.txt").read_text().startswith(
                f"%WER {res.wer:.2f} [ {res.errors} / {res.n_ref_words}, ")
    table = (exp / "RESULTS.md").read_text()
    assert "decode_beam2_lm0.5/test_clean" in table and "decode_greedy/dev_clean" in table

    kept = [*(recipe / "exp").rglob("*.pt"), *exp.rglob("text"), *exp.rglob("*.ark")]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    second = run(args, env, cwd=recipe)
    assert "stage 6" in second.stderr
    assert "already trained for 3 updates" in (exp / "log" / "train.log").read_text()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # a missing LM text is named
    bad = run(args + ["--stage", "3", "--stop_stage", "3", "--lm_text", str(tmp_path / "nope.txt")], env,
              cwd=recipe, check=False)
    assert bad.returncode != 0 and "nope.txt" in bad.stderr
    # asking for the average of N best without trainer.average_best says how to get it
    bad = run(args + ["--stage", "5", "--stop_stage", "5", "--checkpoint", "avg"], env, cwd=recipe, check=False)
    assert bad.returncode != 0 and "trainer.average_best" in bad.stderr
