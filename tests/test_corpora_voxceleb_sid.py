"""VoxCeleb1 speaker identification (SUPERB SID): the synthetic iden_split.txt (every speaker in every set, split
by video, deterministic) and the data dirs sid_train, sid_dev, sid_test prepared from it (against an independent
reading of the list, vox1_all's conventions, idempotence, errors that name the file and line)."""
from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import run

from wavlm.bin import prepare_data
from wavlm.data import datadir
from wavlm.data.corpora import voxceleb
from wavlm.data.corpora.common import CorpusError
from wavlm.synth.voxceleb import VoxSpeaker, iden_sets, make_iden_split

SID = ("sid_train", "sid_dev", "sid_test")
SPEAKERS = {"id10001", "id10002", "id10003", "id10270", "id10271"}
SYNTH = ["python", "-m", "wavlm.bin.synth", "--corpus", "voxceleb", "--nj", "1", "--num_speakers", "3",
         "--num_eval_speakers", "2", "--num_vox2_speakers", "0", "--videos_per_speaker", "3", "--utts_per_video", "2",
         "--num_trials", "10"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory, env) -> Path:
    """3 VoxCeleb1 dev + 2 test speakers, 3 videos x 2 utterances each, no VoxCeleb2."""
    out = tmp_path_factory.mktemp("vox")
    run([*SYNTH, "--out", str(out), "--seed", "0"], env)
    return out / "voxceleb1"


@pytest.fixture
def v1(synth, tmp_path) -> Path:
    """A private copy of the synthetic VoxCeleb1, for tests that change it."""
    dst = tmp_path / "voxceleb1"
    shutil.copytree(synth, dst)
    return dst


def split_of(path: Path) -> dict[str, list[str]]:
    """Set number -> `<spk>/<video>/<nnnnn>.wav` of iden_split.txt, read independently of the code under test."""
    sets: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        num, f = line.split(" ")
        sets[num].append(f)
    return sets


def utt(f: str) -> str:
    return f[: -len(".wav")].replace("/", "-")


def prepare(v1: Path, data: Path, *extra: str) -> int:
    return prepare_data.main(["voxceleb", "--vox1_root", str(v1), "--data", str(data), "--train_sets", *extra])


def test_synthetic_iden_split_lists_every_file_once_every_speaker_in_every_set_split_by_video(synth):
    lines = (synth / "iden_split.txt").read_text().splitlines()
    on_disk = sorted(str(f.relative_to(synth / "wav")) for f in (synth / "wav").glob("*/*/*.wav"))
    assert len(on_disk) == 5 * 3 * 2
    assert [x.split(" ")[1] for x in lines] == on_disk  # every file once, sorted by path
    sets = split_of(synth / "iden_split.txt")
    assert sorted(sets) == ["1", "2", "3"]
    for spk in SPEAKERS:
        videos = {n: {f.split("/")[1] for f in fs if f.startswith(spk + "/")} for n, fs in sets.items()}
        # 3 videos: one whole video for test, another for dev, the third for train
        assert all(len(v) == 1 for v in videos.values()) and len(set.union(*videos.values())) == 3, spk
        for n in "123":
            assert sum(f.startswith(spk + "/") for f in sets[n]) == 2, (spk, n)
    # the other lists and the audio are those of a corpus made without it: the trial lists use their own generator
    assert len((synth / "veri_test2.txt").read_text().splitlines()) == 10


def test_synthetic_iden_split_is_deterministic(synth, tmp_path, env):
    run([*SYNTH, "--out", str(tmp_path / "a"), "--seed", "0"], env)
    run([*SYNTH, "--out", str(tmp_path / "b"), "--seed", "1"], env)
    assert (tmp_path / "a/voxceleb1/iden_split.txt").read_bytes() == (synth / "iden_split.txt").read_bytes()
    a, b = split_of(tmp_path / "a/voxceleb1/iden_split.txt"), split_of(tmp_path / "b/voxceleb1/iden_split.txt")
    assert a["3"] != b["3"]  # another seed: other videos (other ids) and another choice


def test_iden_sets_of_one_speaker_by_hand():
    rng = np.random.default_rng(0)
    # fewer than 3 utterances: train only
    assert iden_sets(["id10001/a/00001.wav", "id10001/b/00001.wav"], rng) == {
        "id10001/a/00001.wav": 1, "id10001/b/00001.wav": 1}
    # 2 videos: a whole video for test; of the other (the one with >= 2 utterances), one for dev
    files = ["id10001/a/00001.wav", "id10001/b/00001.wav", "id10001/b/00002.wav", "id10001/b/00003.wav"]
    for seed in range(8):
        s = iden_sets(files, np.random.default_rng(seed))
        assert s["id10001/a/00001.wav"] == 3, seed  # video a has 1 utterance: it can only be the test video
        assert sorted(s[f] for f in files[1:]) == [1, 1, 2]
    # 1 video: one utterance each for test and dev
    one = [f"id10001/a/{i:05d}.wav" for i in range(1, 5)]
    assert sorted(iden_sets(one, rng).values()) == [1, 1, 2, 3]
    # 4 videos: one whole video each for test and dev, both for train
    four = [f"id10001/{v}/{i:05d}.wav" for v in "abcd" for i in (1, 2)]
    s = iden_sets(four, rng)
    by_video = {v: {s[f] for f in four if f.split("/")[1] == v} for v in "abcd"}
    assert sorted(min(x) for x in by_video.values()) == [1, 1, 2, 3] and all(len(x) == 1 for x in by_video.values())
    # deterministic for a seed; the lines sorted by path
    other = [f.replace("id10001", "id10002") for f in four]
    spks = [VoxSpeaker("id10002", "m", "UK", "dev", other[::-1]), VoxSpeaker("id10001", "f", "UK", "dev", one)]
    a = make_iden_split(spks, np.random.default_rng(5))
    assert a == make_iden_split(spks, np.random.default_rng(5))
    assert [x.split()[1] for x in a] == one + other


def test_sid_data_dirs_follow_the_list_and_vox1_all_and_a_second_run_skips(synth, tmp_path, capsys):
    data = tmp_path / "data"
    assert prepare(synth, data, "--sid_sets", *SID) == 0
    sets = split_of(synth / "iden_split.txt")
    everything = datadir.DataDir(data / "vox1_all")
    for name, num in zip(SID, "123", strict=True):
        d = data / name
        assert datadir.validate(d, check_audio=True) == [], name
        dd = datadir.DataDir(d)
        want = sorted(utt(f) for f in sets[num])
        assert dd.utt_ids() == want and len(want) == 10  # 5 speakers x 2, in C order
        assert set(dd.utt2spk().values()) == SPEAKERS and all(u.startswith(s + "-") for u, s in dd.utt2spk().items())
        for f in sets[num]:
            assert dd.wav_scp[utt(f)] == str(synth / "wav" / f) == everything.wav_scp[utt(f)]
            assert dd.utt2dur()[utt(f)] == everything.utt2dur()[utt(f)]
        spk2utt = {line.split()[0]: line.split()[1:] for line in (d / "spk2utt").read_text().splitlines()}
        assert spk2utt == {s: sorted(utt(f) for f in sets[num] if f.startswith(s + "/")) for s in SPEAKERS}
        assert (d / "spk2gender").read_text() == (data / "vox1_all" / "spk2gender").read_text()
    # a second run leaves them as they are
    mtimes = {n: (data / n / "wav.scp").stat().st_mtime_ns for n in SID}
    capsys.readouterr()
    assert prepare(synth, data, "--sid_sets", *SID) == 0
    err = capsys.readouterr().err
    assert all(f"{data / n} is up to date" in err for n in SID)
    assert mtimes == {n: (data / n / "wav.scp").stat().st_mtime_ns for n in SID}


def test_a_changed_list_prepares_the_sid_dirs_again(v1, tmp_path):
    data = tmp_path / "data"
    assert prepare(v1, data, "--sid_sets", *SID) == 0
    src = v1 / "iden_split.txt"
    lines = src.read_text().splitlines()
    moved = next(n for n, x in enumerate(lines) if x.startswith("1 "))
    lines[moved] = "2" + lines[moved][1:]
    src.write_text("\n".join(lines) + "\n")
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    vox1_all = (data / "vox1_all" / "wav.scp").stat().st_mtime_ns
    assert prepare(v1, data, "--sid_sets", *SID) == 0
    u = utt(lines[moved].split()[1])
    assert u in datadir.DataDir(data / "sid_dev").utt_ids() and u not in datadir.DataDir(data / "sid_train").utt_ids()
    assert len(datadir.DataDir(data / "sid_train").utt_ids()) == 9
    assert (data / "vox1_all" / "wav.scp").stat().st_mtime_ns == vox1_all  # its sources did not change


def test_which_sid_dirs_are_made(v1, tmp_path, capsys):
    # neither option: none (the sv1 recipe's call), and an INFO line says how to ask
    assert prepare(v1, tmp_path / "d1") == 0
    assert not any((tmp_path / "d1" / n).exists() for n in SID)
    assert "not made: not asked for (--sid_sets sid_train sid_dev sid_test)" in capsys.readouterr().err
    # --sid_sets names exactly those made
    assert prepare(v1, tmp_path / "d2", "--sid_sets", "sid_test") == 0
    assert [n for n in SID if (tmp_path / "d2" / n).exists()] == ["sid_test"]
    # --iden_split alone: all three, from that file
    other = tmp_path / "elsewhere" / "split.txt"
    other.parent.mkdir()
    (v1 / "iden_split.txt").rename(other)
    assert prepare(v1, tmp_path / "d3", "--iden_split", str(other)) == 0
    assert all((tmp_path / "d3" / n / ".done").is_file() for n in SID)
    # asked for without the list, or without VoxCeleb1
    assert prepare(v1, tmp_path / "d4", "--sid_sets", "sid_train") == 1
    assert (f"SID sets ['sid_train'] asked for, but {v1 / 'iden_split.txt'} is not there (the identification "
            "split iden_split.txt from https://www.robots.ox.ac.uk/") in capsys.readouterr().err
    with pytest.raises(CorpusError, match=r"SID sets \['sid_dev'\] asked for, but no VoxCeleb1 root"):
        voxceleb.prepare(None, tmp_path, tmp_path / "d4", [], sid_sets=["sid_dev"])
    with pytest.raises(CorpusError, match=r"SID sets \['sid_x'\] unknown: choose from \['sid_train'"):
        voxceleb.prepare(v1, None, tmp_path / "d4", [], sid_sets=["sid_x"])
    with pytest.raises(SystemExit):  # not a voxceleb option
        prepare_data.main(["musan", "--root", str(tmp_path), "--data", str(tmp_path / "d4"), "--sid_sets"])


def write_split(v1: Path, edit) -> Path:
    src = v1 / "iden_split.txt"
    lines = src.read_text().splitlines()
    src.write_text("\n".join(edit(lines)) + "\n")
    return src


@pytest.mark.parametrize("case", ["set", "malformed", "fields", "duplicate"])
def test_bad_lines_name_the_file_and_line(v1, tmp_path, case):
    def edit(lines: list[str]) -> list[str]:
        f = lines[3].split()[1]
        lines[3] = {"set": f"4 {f}", "malformed": "1 id10001/00001.wav", "fields": f"1 {f} extra",
                    "duplicate": lines[1]}[case]
        return lines

    src = write_split(v1, edit)
    f = (src.read_text().splitlines()[1]).split()[1]
    want = {"set": rf"{src}:4: set '4' is not 1 \(train\), 2 \(dev\) or 3 \(test\)",
            "malformed": rf"{src}:4: expected `1\|2\|3 <spk>/<video>/<nnnnn>.wav` .*got '1 id10001/00001.wav'",
            "fields": rf"{src}:4: expected `1\|2\|3 <spk>/<video>/<nnnnn>.wav`",
            "duplicate": rf"{src}:4: {f} \(utterance {utt(f)}\) is listed again; first at line 2"}[case]
    data = tmp_path / "data"
    with pytest.raises(CorpusError, match=want):
        voxceleb.prepare(v1, None, data, [], sid_sets=list(SID))
    assert not data.exists() or not any(data.iterdir())  # checked before anything is written


def test_files_not_on_disk_are_counted_and_the_first_named(v1, tmp_path, capsys):
    shutil.rmtree(v1 / "wav" / "id10002")  # a partial download: one speaker missing
    lines = (v1 / "iden_split.txt").read_text().splitlines()
    first = next(n for n, x in enumerate(lines, 1) if " id10002/" in x)
    f = lines[first - 1].split()[1]
    assert prepare(v1, tmp_path / "data", "--sid_sets", *SID) == 1
    err = capsys.readouterr().err
    assert (f"{v1 / 'iden_split.txt'}:{first}: {f} (utterance {utt(f)}) is not under {v1}; 6 of the 30 files "
            "iden_split.txt lists are missing, this one first: is VoxCeleb1 only partly downloaded") in err
    assert not (tmp_path / "data" / "vox1_all").exists()


def test_files_on_disk_outside_the_list_and_an_empty_set(v1, tmp_path, caplog):
    # the list leaves out the dev set: a data dir asked for that would be empty is an error
    write_split(v1, lambda lines: [x for x in lines if not x.startswith("2 ")])
    with pytest.raises(CorpusError, match=rf"{v1 / 'iden_split.txt'}: no line of set 2, so {tmp_path / 'd' / 'sid_dev'}"
                                          " cannot be made"):
        voxceleb.prepare(v1, None, tmp_path / "d", [], sid_sets=list(SID))
    # those not asked for are not needed; files in no set are named in a warning
    assert voxceleb.prepare(v1, None, tmp_path / "d", [], sid_sets=["sid_train", "sid_test"])
    assert "10 of the 30 VoxCeleb1 utterances under" in caplog.text
    assert not (tmp_path / "d" / "sid_dev").exists()
    # an empty list
    write_split(v1, lambda lines: [])
    with pytest.raises(CorpusError, match=rf"{v1 / 'iden_split.txt'}: no utterances"):
        voxceleb.prepare(v1, None, tmp_path / "d", [], sid_sets=["sid_train"])


def test_a_test_speaker_without_train_utterances_is_warned_about(v1, tmp_path, caplog):
    write_split(v1, lambda lines: [x for x in lines if not (x.startswith("1 ") and " id10270/" in x)])
    voxceleb.prepare(v1, None, tmp_path / "d", [], sid_sets=list(SID))
    assert "1 speakers of sid_test (set 3) have no train utterance (set 1), e.g. id10270" in caplog.text
    assert "id10270" not in datadir.DataDir(tmp_path / "d" / "sid_train").utt2spk().values()
