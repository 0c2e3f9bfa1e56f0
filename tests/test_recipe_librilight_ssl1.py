"""egs/librilight/ssl1 end to end on a synthetic Libri-light with the debug configs: the recordings are
cut into utterances from the json voice activity, an extra Kaldi data dir (standing for GigaSpeech or
VoxPopuli) is combined in, utterances are held out for validation, every stage runs, and a second run
skips every stage."""
from __future__ import annotations

import pytest
from conftest import make_data_dir, recipe_sandbox, run

import wavlm

pytestmark = pytest.mark.slow


def test_ssl1_end_to_end_and_idempotent(tmp_path, env):
    corpus = tmp_path / "corpus"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librilight", "--out", str(corpus), "--seed", "0",
         "--num_speakers", "2", "--files_per_speaker", "1", "--utts_per_file", "6"], env)
    extra = make_data_dir(tmp_path / "extra" / "train", {"giga1": 2}, seconds=2.0, text=False)
    recipe = recipe_sandbox(tmp_path, "librilight/ssl1")
    args = ["./run.sh", "--librilight_root", str(corpus / "librilight"), "--subsets", "small",
            "--max_seconds", "8", "--extra_data_dirs", str(extra), "--num_valid", "3", "--nj", "2",
            "--km1_clusters", "8", "--km2_clusters", "8", "--km_percent", "1.0", "--km_layer", "1",
            "--iter1_config", "conf/debug/iter1.yaml", "--iter2_config", "conf/debug/iter2.yaml",
            "--train_args", "trainer.max_updates=4 trainer.save_interval_updates=2 trainer.valid_interval_updates=2"]
    first = run(args, env, cwd=recipe)
    for stage in range(1, 11):
        assert f"stage {stage}" in first.stderr

    data = recipe / "data"
    assert (data / "small" / "segments").is_file()
    train = set((data / "train" / "utt2spk").read_text().split()[::2])
    valid = set((data / "valid" / "utt2spk").read_text().split()[::2])
    small = set((data / "small" / "utt2spk").read_text().split()[::2])
    assert len(valid) == 3 and not train & valid
    assert train | valid == small | {"giga1-0000", "giga1-0001"}
    exp = recipe / "exp"
    for it in ("iter1", "iter2"):
        assert (exp / it / "checkpoint_4.pt").is_file()
        assert "valid at update 4" in (exp / it / "train.log").read_text()
    labels = (recipe / "dump/km_iter1_l1_8/train/km.txt").read_text().splitlines()
    assert {ln.split()[0] for ln in labels} == train

    stamps = {p: p.stat().st_mtime_ns for p in list(exp.rglob("*.pt")) + list((recipe / "dump").rglob("*.scp"))
              + list(data.rglob("*"))}
    second = run(args, env, cwd=recipe)
    assert "stage 9" in second.stderr and "up to date" in second.stderr
    assert "already trained for 4 updates" in (exp / "iter2" / "log" / "train.log").read_text()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed or rewritten
    assert wavlm.load_model(str(exp / "iter2" / "wavlm_official.pt")) is not None
