"""LibriSpeech preparation beyond the plain subsets: Libri-light's limited supervision sets
(train_10min = 1h/0, train_1h = 1h/*, train_10h = 1h/* + 9h, counted against the files on disk) and
train_960 (the union of the three training subsets); both idempotent, bad input names the file."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run

from wavlm.bin import prepare_data
from wavlm.data import datadir
from wavlm.data.corpora import librispeech
from wavlm.data.corpora.common import CorpusError

TRAIN = ("train-clean-100", "train-clean-360", "train-other-500")


@pytest.fixture(scope="module")
def synth(tmp_path_factory, env) -> Path:
    """A tiny synthetic LibriSpeech (three training subsets, dev-clean) with librispeech_finetuning/."""
    out = tmp_path_factory.mktemp("lsft")
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librispeech", "--out", str(out), "--seed", "0",
         "--subsets", ",".join((*TRAIN, "dev-clean")), "--num_speakers", "2", "--num_eval_speakers", "1",
         "--chapters_per_speaker", "1", "--utts_per_speaker", "2", "--lm_sentences", "5"], env)
    return out


@pytest.fixture
def corpus(synth, tmp_path) -> Path:
    """A private copy of the synthetic corpus, for tests that change it."""
    dst = tmp_path / "corpus"
    shutil.copytree(synth, dst)
    return dst


def stems(root: Path, *patterns: str) -> set[str]:
    return {f.stem for p in patterns for f in root.glob(f"{p}/*/*/*.flac")}


def test_finetuning_sets_are_nested_and_match_the_files(synth, tmp_path, capsys):
    ft = synth / "librispeech_finetuning"
    data = tmp_path / "data"
    assert prepare_data.main(["librispeech_finetuning", "--root", str(ft), "--data", str(data),
                              "--speakers", str(synth / "LibriSpeech" / "SPEAKERS.TXT")]) == 0
    want = {"train_10min": stems(ft, "1h/0/*"), "train_1h": stems(ft, "1h/*/*"),
            "train_10h": stems(ft, "1h/*/*", "9h/*")}
    assert len(want["train_10min"]) > 0
    assert len(want["train_1h"]) == 6 * len(want["train_10min"])  # the synthetic leaves are equal-sized
    assert want["train_10min"] < want["train_1h"] < want["train_10h"]
    got = {}
    for name in want:
        d = data / name
        assert datadir.validate(d, check_audio=True, need_text=True) == []
        dd = datadir.DataDir(d)
        got[name] = set(dd.utt_ids())
        assert got[name] == want[name]  # the LibriSpeech ids, nothing renamed, nothing lost
        assert all(spk == utt.rsplit("-", 1)[0] for utt, spk in dd.utt2spk().items())
        assert (d / "spk2gender").is_file() and (d / "utt2dur").is_file()
    assert got["train_10min"] < got["train_1h"] < got["train_10h"]
    # text is the trans.txt line of each utterance
    trans = next(ft.glob("9h/other/*/*/*.trans.txt"))
    utt, _, words = trans.read_text().splitlines()[0].partition(" ")
    assert datadir.DataDir(data / "train_10h").text()[utt] == words
    assert utt not in got["train_1h"]
    wav = datadir.DataDir(data / "train_10min").wav_scp
    assert all(Path(wav[u]).is_relative_to(ft / "1h" / "0") for u in wav.keys())
    # a second run leaves every set as it is
    mtimes = {n: (data / n / "wav.scp").stat().st_mtime_ns for n in want}
    capsys.readouterr()
    assert prepare_data.main(["librispeech_finetuning", "--root", str(ft), "--data", str(data),
                              "--speakers", str(synth / "LibriSpeech" / "SPEAKERS.TXT")]) == 0
    err = capsys.readouterr().err
    assert all(f"{data / n} is up to date" in err for n in want)
    assert mtimes == {n: (data / n / "wav.scp").stat().st_mtime_ns for n in want}


def test_finetuning_only_some_sets(synth, tmp_path):
    data = tmp_path / "data"
    out = librispeech.prepare_finetuning(synth / "librispeech_finetuning", data, ["train_10min"])
    assert out == [data / "train_10min"] and not (data / "train_1h").exists()
    assert not (data / "train_10min" / "spk2gender").exists()  # no SPEAKERS.TXT given
    with pytest.raises(CorpusError, match=r"unknown Libri-light fine-tuning sets \['train_5h'\]"):
        librispeech.prepare_finetuning(synth / "librispeech_finetuning", data, ["train_5h"])
    with pytest.raises(CorpusError, match="is not a directory.*librispeech_finetuning.tgz"):
        librispeech.prepare_finetuning(tmp_path / "nope", data)


def test_finetuning_missing_transcript_line_names_the_file(corpus, tmp_path, capsys):
    ft = corpus / "librispeech_finetuning"
    trans = sorted(ft.glob("9h/clean/*/*/*.trans.txt"))[0]
    lines = trans.read_text().splitlines()
    trans.write_text("\n".join(lines[:-1]) + "\n")
    dropped = lines[-1].split()[0]
    data = tmp_path / "data"
    assert prepare_data.main(["librispeech_finetuning", "--root", str(ft), "--data", str(data)]) == 1
    assert f"1 flac files have no transcript line, e.g. {dropped} (expected in {trans})" in capsys.readouterr().err
    # the sets without 9h were prepared before the error; nothing half-written is left for train_10h
    assert datadir.validate(data / "train_1h") == [] and not (data / "train_10h").exists()
    # a missing 9h/ says what is expected
    shutil.rmtree(ft / "9h")
    with pytest.raises(CorpusError, match=r"no 9h/\*/ directories for train_10h"):
        librispeech.prepare_finetuning(ft, data, ["train_10h"])


def test_finetuning_changed_corpus_is_prepared_again(corpus, tmp_path):
    ft = corpus / "librispeech_finetuning"
    data = tmp_path / "data"
    librispeech.prepare_finetuning(ft, data)
    flac = sorted(ft.glob("1h/0/other/*/*/*.flac"))[-1]
    trans = next(flac.parent.glob("*.trans.txt"))
    trans.write_text("".join(f"{x}\n" for x in trans.read_text().splitlines() if not x.startswith(flac.stem)))
    flac.unlink()
    librispeech.prepare_finetuning(ft, data)
    for name in ("train_10min", "train_1h", "train_10h"):
        assert flac.stem not in datadir.DataDir(data / name).utt_ids()
        assert datadir.validate(data / name, need_text=True) == []


def test_train_960_combines_the_three_training_subsets(corpus, tmp_path, capsys):
    ls = corpus / "LibriSpeech"
    data = tmp_path / "data"
    assert prepare_data.main(["librispeech", "--root", str(ls), "--data", str(data), "--combine_960",
                              "--subsets", "train-clean-100", "dev-clean"]) == 0
    assert not (data / "train_960").exists()
    err = capsys.readouterr().err
    assert "train_960 not made" in err and "(needs LibriSpeech/train-clean-360 train-other-500)" in err
    assert prepare_data.main(["librispeech", "--root", str(ls), "--data", str(data), "--combine_960"]) == 0
    d = data / "train_960"
    assert datadir.validate(d, check_audio=True, need_text=True) == []
    assert set(datadir.DataDir(d).utt_ids()) == stems(ls, *TRAIN)
    for p in TRAIN:
        part = datadir.DataDir(data / p.replace("-", "_"))
        assert set(part.utt_ids()) <= set(datadir.DataDir(d).utt_ids())
        assert all(datadir.DataDir(d).text()[u] == t for u, t in part.text().items())
    assert (d / "utt2dur").is_file() and (d / "spk2gender").is_file()
    # a second run skips it
    mtime = (d / "wav.scp").stat().st_mtime_ns
    capsys.readouterr()
    assert prepare_data.main(["librispeech", "--root", str(ls), "--data", str(data), "--combine_960"]) == 0
    assert f"{d} is up to date" in capsys.readouterr().err and (d / "wav.scp").stat().st_mtime_ns == mtime
    # a changed part is combined again
    flac = sorted((ls / "train-other-500").glob("*/*/*.flac"))[0]
    trans = next(flac.parent.glob("*.trans.txt"))
    trans.write_text("".join(f"{x}\n" for x in trans.read_text().splitlines() if not x.startswith(flac.stem)))
    flac.unlink()
    librispeech.prepare(ls, data, combine_960=True)
    assert flac.stem not in datadir.DataDir(d).utt_ids()
    assert set(datadir.DataDir(d).utt_ids()) == stems(ls, *TRAIN)
    # without the option nothing is combined
    assert prepare_data.main(["librispeech", "--root", str(ls), "--data", str(tmp_path / "d2")]) == 0
    assert not (tmp_path / "d2" / "train_960").exists()


def test_options_of_other_corpora_are_refused(synth, tmp_path):
    with pytest.raises(SystemExit):
        prepare_data.main(["librilight", "--root", str(synth), "--data", str(tmp_path), "--combine_960"])
    with pytest.raises(SystemExit):
        prepare_data.main(["librispeech", "--root", str(synth), "--data", str(tmp_path), "--speakers", "x"])


def test_relative_roots_give_absolute_paths_and_an_empty_root_is_named(synth, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(synth)
    data = tmp_path / "data"
    librispeech.prepare("LibriSpeech", data, ["dev-clean"])
    librispeech.prepare_finetuning("librispeech_finetuning", data, ["train_10min"])
    for name in ("dev_clean", "train_10min"):
        paths = wav_paths(data / name)
        assert paths and all(p.startswith(f"{synth}/") and Path(p).is_file() for p in paths), paths
    with pytest.raises(CorpusError, match="no LibriSpeech directory given"):
        librispeech.prepare("", data)
    with pytest.raises(CorpusError, match="no librispeech_finetuning directory given"):
        librispeech.prepare_finetuning("", data)
    assert prepare_data.main(["librispeech", "--root", "", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "no LibriSpeech directory given" in err and "is under ." not in err


def wav_paths(d: Path) -> list[str]:
    return [line.split(maxsplit=1)[1] for line in (d / "wav.scp").read_text().splitlines()]
