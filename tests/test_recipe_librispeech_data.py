"""egs/librispeech/asr1 stage 1 on a LibriSpeech tree in the real layout."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import recipe_sandbox, run

from wavlm.data import datadir

# make_librispeech and the synthetic corpora have no dev-other/test-*: the sets run.sh's later stages use
SETS = ["--valid_set", "dev_clean", "--test_sets", "dev_clean"]


def make_librispeech(root: Path, more_train: bool = False) -> Path:
    ls = root / "LibriSpeech"
    rng = np.random.default_rng(0)
    layout = {"train-clean-100": {"19": ["198", "227"], "26": ["495"]}, "dev-clean": {"84": ["121123"]}}
    if more_train:
        layout |= {"train-clean-360": {"100": ["121669"]}, "train-other-500": {"20": ["205"]}}
    for subset, spks in layout.items():
        for spk, chapters in spks.items():
            for ch in chapters:
                d = ls / subset / spk / ch
                d.mkdir(parents=True)
                lines = []
                for i in range(3):
                    utt = f"{spk}-{ch}-{i:04d}"
                    sf.write(d / f"{utt}.flac", (0.1 * rng.standard_normal(8000 + 800 * i)).astype(np.float32),
                             16000)
                    lines.append(f"{utt} WORD NUMBER {i}\n")
                (d / f"{spk}-{ch}.trans.txt").write_text("".join(lines))
    (ls / "SPEAKERS.TXT").write_text("; ID | SEX | SUBSET | MINUTES | NAME\n19 | F | train-clean-100 | 25.19 | Kara\n"
                                     "26 | M | train-clean-100 | 25.08 | Denny\n84 | F | dev-clean | 8.02 | Christie\n"
                                     "100 | F | train-clean-360 | 25.03 | Judy\n20 | F | train-other-500 | 30.07 | X\n")
    return ls


def test_stage1_prepares_validated_dirs(tmp_path, env):
    ls = make_librispeech(tmp_path / "corpus")
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--librispeech_root", str(ls), *SETS], env, cwd=recipe)
    train = recipe / "data" / "train_clean_100"
    assert datadir.validate(train, check_audio=True, need_text=True) == []
    d = datadir.DataDir(train)
    assert len(d.utt_ids()) == 9
    assert d.utt2spk()["19-198-0001"] == "19-198"
    assert d.text()["26-495-0002"] == "WORD NUMBER 2"
    assert (train / "spk2gender").read_text() == "19-198 f\n19-227 f\n26-495 m\n"
    assert d.utt2dur()["19-198-0002"] == 0.6
    assert (recipe / "data" / "dev_clean" / "wav.scp").is_file()
    # idempotent: a second run skips the up-to-date dirs and leaves them untouched
    mtime = (train / "wav.scp").stat().st_mtime_ns
    p = run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--librispeech_root", str(ls), *SETS], env, cwd=recipe)
    assert "is up to date" in p.stderr and (train / "wav.scp").stat().st_mtime_ns == mtime
    # a changed corpus is prepared again
    (ls / "dev-clean/84/121123/84-121123-0002.flac").unlink()
    (ls / "dev-clean/84/121123/84-121123.trans.txt").write_text("84-121123-0000 A\n84-121123-0001 B\n")
    run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--librispeech_root", str(ls), *SETS], env, cwd=recipe)
    assert datadir.DataDir(recipe / "data" / "dev_clean").utt_ids() == ["84-121123-0000", "84-121123-0001"]


def test_stage1_wrong_root_says_what_was_expected(tmp_path, env):
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    p = run(["./run.sh", "--librispeech_root", str(tmp_path / "nope"), "--stop_stage", "1"], env, cwd=recipe,
            check=False)
    assert p.returncode != 0
    assert "is not a directory" in p.stderr and "openslr.org resource 12" in p.stderr
    (tmp_path / "empty").mkdir()
    p = run(["./run.sh", "--librispeech_root", str(tmp_path / "empty"), "--stop_stage", "1"], env, cwd=recipe,
            check=False)
    assert p.returncode != 0 and "none of the subsets" in p.stderr


def test_stage1_missing_transcript_names_file(tmp_path, env):
    ls = make_librispeech(tmp_path / "corpus")
    (ls / "train-clean-100/19/198/19-198.trans.txt").write_text("19-198-0000 A\n19-198-0001 B\n")
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    p = run(["./run.sh", "--librispeech_root", str(ls), "--stop_stage", "1"], env, cwd=recipe, check=False)
    assert p.returncode != 0
    assert ("1 flac files have no transcript line, e.g. 19-198-0002 "
            f"(expected in {ls}/train-clean-100/19/198/19-198.trans.txt)") in p.stderr


def test_synthetic_librispeech_is_parsed_back(tmp_path, env):
    out = tmp_path / "synth"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(out), "--seed", "3",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "2", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "3", "--lm_sentences", "10", "--no_finetuning"],
        env)
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(out / "LibriSpeech"), *SETS], env, cwd=recipe)
    for name, n in (("train_clean_100", 6), ("dev_clean", 3)):
        d = recipe / "data" / name
        assert datadir.validate(d, check_audio=True, need_text=True) == []
        assert len(datadir.DataDir(d).utt_ids()) == n
        assert all(t.isupper() for t in datadir.DataDir(d).text().values())


def test_stage1_train_960(tmp_path, env):
    ls = make_librispeech(tmp_path / "corpus", more_train=True)
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    p = run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--librispeech_root", str(ls), *SETS], env, cwd=recipe)
    train = recipe / "data" / "train_960"
    assert datadir.validate(train, check_audio=True, need_text=True) == []
    assert len(datadir.DataDir(train).utt_ids()) == 15 and datadir.DataDir(train).utt2spk()["20-205-0001"] == "20-205"
    assert "librispeech_finetuning" in p.stderr and "skipping train_10min" in p.stderr
    mtime = (train / "wav.scp").stat().st_mtime_ns
    p = run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--librispeech_root", str(ls), *SETS], env, cwd=recipe)
    assert f"{Path('data/train_960')} is up to date" in p.stderr and (train / "wav.scp").stat().st_mtime_ns == mtime
    p = run(["local/data.sh", "--librispeech_root", str(ls), "--combine_960", "false", "--data", "data2"], env,
            cwd=recipe)
    assert not (recipe / "data2" / "train_960").exists() and (recipe / "data2" / "train_other_500").is_dir()


def test_stage1_librilight_finetuning_sets(tmp_path, env):
    out = tmp_path / "synth"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(out), "--seed", "0",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "3", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "2", "--lm_sentences", "5"], env)
    ft = out / "librispeech_finetuning"
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    # run.sh passes only --librispeech_root: librispeech_finetuning/ beside LibriSpeech/ is found
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(out / "LibriSpeech"), *SETS], env,
            cwd=recipe)
    assert "train_960 not made" in p.stderr
    n = {name: len(list(ft.glob(f"{pat}/*/*/*.flac"))) for name, pat in (("10min", "1h/0/*"), ("1h", "1h/*/*"),
                                                                          ("9h", "9h/*"))}
    sets = {}
    for name, count in (("train_10min", n["10min"]), ("train_1h", n["1h"]), ("train_10h", n["1h"] + n["9h"])):
        d = recipe / "data" / name
        assert datadir.validate(d, check_audio=True, need_text=True) == []
        sets[name] = set(datadir.DataDir(d).utt_ids())
        assert len(sets[name]) == count > 0
        assert (d / "spk2gender").is_file()  # genders from LibriSpeech/SPEAKERS.TXT
    assert sets["train_10min"] < sets["train_1h"] < sets["train_10h"]
    mtime = (recipe / "data" / "train_10h" / "wav.scp").stat().st_mtime_ns
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(out / "LibriSpeech"), *SETS], env,
            cwd=recipe)
    assert "data/train_10h is up to date" in p.stderr
    assert (recipe / "data" / "train_10h" / "wav.scp").stat().st_mtime_ns == mtime
    # an explicit root elsewhere; a missing transcript line names the file
    moved = tmp_path / "elsewhere" / "ft"
    shutil.copytree(ft, moved)
    trans = sorted(moved.glob("1h/0/clean/*/*/*.trans.txt"))[0]
    trans.write_text(trans.read_text().splitlines()[0] + "\n")
    p = run(["local/data.sh", "--librispeech_root", str(out / "LibriSpeech"), "--data", "data2",
             "--librispeech_finetuning_root", str(moved)], env, cwd=recipe, check=False)
    assert p.returncode != 0 and f"(expected in {trans})" in p.stderr
    p = run(["local/data.sh", "--librispeech_root", str(out / "LibriSpeech"), "--data", "data3",
             "--librispeech_finetuning_root", str(tmp_path / "nope")], env, cwd=recipe, check=False)
    assert p.returncode != 0 and "is not a directory" in p.stderr and "librispeech_finetuning.tgz" in p.stderr


def wav_paths(d: Path) -> list[str]:
    return [line.split(maxsplit=1)[1] for line in (d / "wav.scp").read_text().splitlines()]


def test_asr1_relative_root_and_finetuning_root_from_run_sh(tmp_path, env):
    """run.sh takes every option of local/data.sh (--librispeech_finetuning_root was refused); a relative
    root gives absolute paths in every data dir (LibriSpeech's were relative, the fine-tuning sets' absolute)."""
    out = tmp_path / "synth"
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(out), "--seed", "0",
         "--subsets", "train-clean-100,dev-clean", "--num_speakers", "2", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "2", "--lm_sentences", "5"], env)
    moved = tmp_path / "elsewhere" / "ft"
    shutil.move(out / "librispeech_finetuning", moved)
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    root = os.path.relpath(out / "LibriSpeech", recipe)
    run(["./run.sh", "--stop_stage", "1", "--librispeech_root", root, *SETS, "--train_set", "train_10min",
         "--librispeech_finetuning_root", os.path.relpath(moved, recipe), "--finetuning_sets", "train_10min"],
        env, cwd=recipe)
    for name in ("train_clean_100", "dev_clean", "train_10min"):
        paths = wav_paths(recipe / "data" / name)
        assert paths and all(os.path.isabs(x) and os.path.isfile(x) for x in paths), (name, paths)
    assert not (recipe / "data" / "train_1h").exists()


def test_asr1_missing_root_and_sets_name_the_option(tmp_path, env):
    ls = make_librispeech(tmp_path / "corpus")
    recipe = recipe_sandbox(tmp_path, "librispeech/asr1")
    p = run(["./run.sh", "--stop_stage", "1"], env, cwd=recipe, check=False)
    assert p.returncode != 0 and "give --librispeech_root DIR" in p.stderr and "is under ." not in p.stderr
    # the defaults name dev_other and the test sets, which this download does not hold
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls)], env, cwd=recipe, check=False)
    assert p.returncode != 0
    assert "--valid_set names data/dev_other, which stage 1 did not make" in p.stderr
    assert "the data dirs there: dev_clean train_clean_100: pass --valid_set with those" in p.stderr
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls), "--valid_set", "dev_clean"], env,
            cwd=recipe, check=False)
    assert p.returncode != 0 and "--test_sets names data/dev_other" in p.stderr
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls), "--subsets", "train-clean-100 dev-other"],
            env, cwd=recipe, check=False)
    assert p.returncode != 0 and "(--subsets train-clean-100)" in p.stderr


def test_ssl1_partial_download_names_the_options(tmp_path, env):
    ls = make_librispeech(tmp_path / "corpus")
    recipe = recipe_sandbox(tmp_path, "librispeech/ssl1")
    p = run(["./run.sh", "--stop_stage", "1"], env, cwd=recipe, check=False)
    assert p.returncode != 0 and "give --librispeech_root DIR" in p.stderr and "is under ." not in p.stderr
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls)], env, cwd=recipe, check=False)
    assert p.returncode != 0
    assert ('train_960 needs --train_parts "train_clean_100 train_clean_360 train_other_500"; train_clean_360 '
            f"train_other_500 not under {ls} (as train-clean-360 train-other-500); found only: train_clean_100 "
            "dev_clean: pass --train_set train_clean_100 --train_parts train_clean_100") in p.stderr
    part = ["--train_set", "train_clean_100", "--train_parts", "train_clean_100"]
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls), *part, "--valid_set", "dev_other"], env,
            cwd=recipe, check=False)
    assert p.returncode != 0 and "the validation set dev_other (--valid_set) is not under" in p.stderr
    run(["./run.sh", "--stop_stage", "1", "--librispeech_root", os.path.relpath(ls, recipe), *part], env, cwd=recipe)
    for name in ("train_clean_100", "dev_clean"):
        assert all(os.path.isabs(x) for x in wav_paths(recipe / "data" / name))


def test_css1_missing_roots_and_conditions_name_the_option(tmp_path, env):
    css = tmp_path / "LibriCSS"
    for c in ("0S", "OV10"):
        (css / "for_release" / c).mkdir(parents=True)
    ls = tmp_path / "LibriSpeech"
    (ls / "train-clean-100").mkdir(parents=True)
    recipe = recipe_sandbox(tmp_path, "libricss/css1")
    p = run(["./run.sh", "--stop_stage", "1", "--librispeech_root", str(ls)], env, cwd=recipe, check=False)
    assert p.returncode != 0 and "give --libricss_root DIR" in p.stderr
    p = run(["./run.sh", "--stop_stage", "1", "--libricss_root", str(css), "--librispeech_root", str(ls)], env,
            cwd=recipe, check=False)
    assert p.returncode != 0
    assert (f"the LibriCSS conditions 0L OV20 OV30 OV40 are not under {css}/for_release; found only 0S OV10: "
            'pass --conditions "0S OV10"') in p.stderr
    p = run(["./run.sh", "--stop_stage", "1", "--libricss_root", str(css), "--librispeech_root", str(ls),
             "--conditions", "0S OV10"], env, cwd=recipe, check=False)
    assert p.returncode != 0 and f"no {ls}/dev-clean: the training and validation mixtures" in p.stderr
