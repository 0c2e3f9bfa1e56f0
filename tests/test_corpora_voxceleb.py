"""VoxCeleb preparation on the synthetic corpus: data dirs counted against the files on disk, the
dev/test split, trial lists as Kaldi trials with their labels, errors that name the file and line,
idempotence, m4a through ffmpeg pipes (and a clear stop without ffmpeg), local/data.sh."""
from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import recipe_sandbox, run

from wavlm.bin import prepare_data
from wavlm.data import datadir
from wavlm.data.corpora import voxceleb
from wavlm.data.corpora.common import CorpusError

LISTS = {"vox1_O": "veri_test2.txt", "vox1_E": "list_test_all2.txt", "vox1_H": "list_test_hard2.txt"}
NUM_TRIALS = 20


@pytest.fixture(scope="module")
def synth(tmp_path_factory, env) -> Path:
    """3 VoxCeleb1 dev + 2 test speakers, 2 VoxCeleb2 speakers, 2 videos x 2 utterances each."""
    out = tmp_path_factory.mktemp("vox")
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "voxceleb", "--out", str(out), "--seed", "0", "--nj", "1",
         "--num_speakers", "3", "--num_eval_speakers", "2", "--num_vox2_speakers", "2", "--videos_per_speaker", "2",
         "--utts_per_video", "2", "--num_trials", str(NUM_TRIALS)], env)
    return out


@pytest.fixture
def corpus(synth, tmp_path) -> Path:
    """A private copy of the synthetic corpus, for tests that change it."""
    dst = tmp_path / "corpus"
    shutil.copytree(synth, dst)
    return dst


def on_disk(root: Path, speakers=None) -> set[str]:
    """Utterance ids `<spk>-<video>-<nnnnn>` of the files under root/wav (of `speakers` when given)."""
    return {f"{f.parent.parent.name}-{f.parent.name}-{f.stem}" for f in root.glob("wav/*/*/*.wav")
            if speakers is None or f.parent.parent.name in speakers}


def meta_sets(v1: Path) -> dict[str, str]:
    rows = [line.split("\t") for line in (v1 / "vox1_meta.csv").read_text().splitlines()[1:]]
    return {r[0]: r[4] for r in rows}


def prepare(synth: Path, data: Path, *extra: str) -> int:
    return prepare_data.main(["voxceleb", "--vox1_root", str(synth / "voxceleb1"), "--vox2_root",
                              str(synth / "voxceleb2"), "--data", str(data), *extra])


def test_data_dirs_match_the_files_and_a_second_run_skips(synth, tmp_path, capsys):
    v1, v2 = synth / "voxceleb1", synth / "voxceleb2"
    data = tmp_path / "data"
    assert prepare(synth, data, "--train_sets", "vox2_dev", "vox1_dev") == 0
    sets = meta_sets(v1)
    test_spk = {s for s, x in sets.items() if x == "test"}
    dev_spk = {s for s, x in sets.items() if x == "dev"}
    assert test_spk == {"id10270", "id10271"} and len(dev_spk) == 3
    want = {"vox1_dev": on_disk(v1, dev_spk), "vox1_test": on_disk(v1, test_spk), "vox1_all": on_disk(v1),
            "vox2_dev": on_disk(v2)}
    want["train"] = want["vox2_dev"] | want["vox1_dev"]
    spks = {"vox1_dev": dev_spk, "vox1_test": test_spk, "vox1_all": dev_spk | test_spk,
            "vox2_dev": {p.name for p in (v2 / "wav").iterdir()}}
    spks["train"] = spks["vox2_dev"] | dev_spk
    for name, utts in want.items():
        d = data / name
        assert datadir.validate(d, check_audio=True) == [], name
        dd = datadir.DataDir(d)
        assert set(dd.utt_ids()) == utts and len(utts) == 4 * len(spks[name])  # 2 videos x 2 utterances
        u2s = dd.utt2spk()
        assert set(u2s.values()) == spks[name]
        assert all(u.startswith(s + "-") for u, s in u2s.items())
        assert set(dd.utt2dur()) == utts
        assert (d / "spk2gender").is_file()
    dd = datadir.DataDir(data / "vox1_all")
    utt = "-".join(sorted(v1.glob("wav/*/*/*.wav"))[0].relative_to(v1 / "wav").with_suffix("").parts)
    assert Path(dd.wav_scp[utt]) == v1 / "wav" / Path(*utt.split("-", 2)).with_suffix(".wav")
    wav, sr = sf.read(dd.wav_scp[utt])
    assert dd.utt2dur()[utt] == pytest.approx(len(wav) / sr, abs=1e-3)
    # a second run leaves everything as it is
    names = [*want, *(f"trials/{t}" for t in LISTS)]
    mtimes = {n: (data / n).stat().st_mtime_ns for n in names}
    capsys.readouterr()
    assert prepare(synth, data, "--train_sets", "vox2_dev", "vox1_dev") == 0
    err = capsys.readouterr().err
    assert all(f"{data / n} is up to date" in err for n in names)
    assert mtimes == {n: (data / n).stat().st_mtime_ns for n in names}


def test_train_is_vox2_dev_by_default(synth, tmp_path):
    data = tmp_path / "data"
    voxceleb.prepare(synth / "voxceleb1", synth / "voxceleb2", data)
    assert set(datadir.DataDir(data / "train").utt_ids()) == on_disk(synth / "voxceleb2")
    # no train sets: no data/train; a train set that cannot be made says what to give
    assert voxceleb.prepare(synth / "voxceleb1", None, tmp_path / "d2", []) and not (tmp_path / "d2/train").exists()
    with pytest.raises(CorpusError, match=r"vox2_dev not prepared; give --vox2_root"):
        voxceleb.prepare(synth / "voxceleb1", None, tmp_path / "d3")
    with pytest.raises(CorpusError, match=r"train sets \['vox1_test'\] not allowed"):
        voxceleb.prepare(synth / "voxceleb1", None, tmp_path / "d3", ["vox1_test"])


def test_trials_are_kaldi_trials_with_the_right_labels(synth, tmp_path):
    data = tmp_path / "data"
    voxceleb.prepare(synth / "voxceleb1", synth / "voxceleb2", data)
    for name, file in LISTS.items():
        src = (synth / "voxceleb1" / file).read_text().splitlines()
        got = (data / "trials" / name).read_text().splitlines()
        assert len(got) == len(src) == NUM_TRIALS
        against = set(datadir.DataDir(data / ("vox1_test" if name == "vox1_O" else "vox1_all")).utt_ids())
        for s, g in zip(src, got, strict=True):
            label, a, b = s.split()
            enroll, test, kind = g.split()
            assert enroll == a[:-len(".wav")].replace("/", "-") and test == b[:-len(".wav")].replace("/", "-")
            assert kind == {"1": "target", "0": "nontarget"}[label]
            assert (kind == "target") == (enroll.split("-")[0] == test.split("-")[0])
            assert enroll in against and test in against
        assert sum(x.endswith(" target") for x in got) == NUM_TRIALS // 2
    # the O list uses test speakers only; E and H reach dev speakers too
    spk = {n: {u.split("-")[0] for x in (data / "trials" / n).read_text().splitlines() for u in x.split()[:2]}
           for n in LISTS}
    assert spk["vox1_O"] <= {"id10270", "id10271"}
    assert spk["vox1_E"] - {"id10270", "id10271"}


def test_trial_naming_a_missing_utterance_names_the_file_and_line(corpus, tmp_path, capsys):
    src = corpus / "voxceleb1" / "veri_test2.txt"
    lines = src.read_text().splitlines()
    lines[2] = "1 id10270/noSuchVideo/00001.wav " + lines[2].split()[2]
    src.write_text("\n".join(lines) + "\n")
    data = tmp_path / "data"
    assert prepare(corpus, data) == 1
    err = capsys.readouterr().err
    assert (f"{src}:3: id10270/noSuchVideo/00001.wav (utterance id10270-noSuchVideo-00001) is not in "
            f"{data / 'vox1_test'}") in err
    assert not (data / "trials" / "vox1_O").exists()
    # E and H name their list and say they need all of VoxCeleb1
    hard = corpus / "voxceleb1" / "list_test_hard2.txt"
    dev_file = next(f for f in hard.read_text().split() if f.startswith("id1000"))
    shutil.rmtree(corpus / "voxceleb1" / "wav" / dev_file.split("/")[0])
    src.write_text("\n".join(x for n, x in enumerate(lines) if n != 2) + "\n")
    with pytest.raises(CorpusError, match=r"list_test_all2.txt:\d+: .* need all of VoxCeleb1"):
        voxceleb.prepare(corpus / "voxceleb1", None, data, [])
    # a malformed line
    src.write_text("yes a b\n")
    with pytest.raises(CorpusError, match=rf"{src}:1: expected `1\|0 <spk>/<video>/<nnnnn>.wav"):
        voxceleb.prepare(corpus / "voxceleb1", None, tmp_path / "d2", [])


def test_missing_lists_and_meta(corpus, tmp_path, capsys):
    v1 = corpus / "voxceleb1"
    (v1 / "list_test_hard2.txt").unlink()
    (v1 / "vox1_meta.csv").unlink()
    data = tmp_path / "data"
    assert prepare_data.main(["voxceleb", "--vox1_root", str(v1), "--data", str(data), "--train_sets"]) == 0
    err = capsys.readouterr().err
    assert f"{data / 'trials' / 'vox1_H'} not made: no {v1 / 'list_test_hard2.txt'}" in err
    assert (data / "trials" / "vox1_O").is_file() and not (data / "trials" / "vox1_H").exists()
    # without the meta file the id range decides: id10270.. are test speakers
    assert set(datadir.DataDir(data / "vox1_test").utt2spk().values()) == {"id10270", "id10271"}
    assert not (data / "vox1_test" / "spk2gender").exists()
    # a meta file decides over the id range, and a change of it prepares the dirs again
    (v1 / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n" + "".join(
        f"{s}\tX\tf\tUK\t{'test' if s in ('id10001', 'id10270') else 'dev'}\n"
        for s in sorted(p.name for p in (v1 / "wav").iterdir())))
    voxceleb.prepare(v1, None, data, [], trials_dir=tmp_path)  # (the O list would no longer fit)
    assert set(datadir.DataDir(data / "vox1_test").utt2spk().values()) == {"id10001", "id10270"}
    assert (data / "vox1_test" / "spk2gender").read_text() == "id10001 f\nid10270 f\n"


def test_wrong_roots_say_what_to_download(synth, tmp_path):
    with pytest.raises(CorpusError, match=r"VoxCeleb1 root .* is not a directory .*robots.ox.ac.uk"):
        voxceleb.prepare(tmp_path / "nope", None, tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=r"no wav/<id1xxxx>/<video>/<nnnnn>.wav files; is this VoxCeleb1\?"):
        voxceleb.prepare(tmp_path / "empty", None, tmp_path / "data")
    with pytest.raises(CorpusError, match=r"no dev/aac/<id0xxxx>/<video>/<nnnnn>.m4a .*vox2_dev_aac"):
        voxceleb.prepare(None, tmp_path / "empty", tmp_path / "data")
    with pytest.raises(CorpusError, match=r"speaker directory id10\d+ is not a VoxCeleb2 id"):
        voxceleb.prepare(None, synth / "voxceleb1", tmp_path / "data")
    with pytest.raises(CorpusError, match=r"speaker directory id0\d+ is not a VoxCeleb1 id"):
        voxceleb.prepare(synth, None, tmp_path / "data")  # the parent of voxceleb1/ and voxceleb2/
    with pytest.raises(CorpusError, match="give the VoxCeleb1 root, the VoxCeleb2 root, or both"):
        voxceleb.prepare(None, None, tmp_path / "data")


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def m4a(seconds: float, version: int = 0, timescale: int = 44100) -> bytes:
    """A minimal MP4 (ftyp, mdat, moov/mvhd at the end, as many encoders write it)."""
    n = round(seconds * timescale)
    if version == 0:
        mvhd = struct.pack(">B3xIIII", 0, 0, 0, timescale, n)
    else:
        mvhd = struct.pack(">B3xQQIQ", 1, 0, 0, timescale, n)
    return (box(b"ftyp", b"M4A \0\0\0\0isomM4A ") + box(b"mdat", bytes(1000))
            + box(b"moov", box(b"mvhd", mvhd + bytes(80)) + box(b"trak", bytes(16))))


def test_m4a_duration_from_the_header(tmp_path):
    for version in (0, 1):
        p = tmp_path / f"v{version}.m4a"
        p.write_bytes(m4a(3.25, version))
        assert voxceleb.m4a_duration(p) == pytest.approx(3.25, abs=1e-4)
    p.write_bytes(m4a(3.25)[:-120])  # moov cut off
    with pytest.raises(CorpusError, match=rf"{p}: no moov/mvhd box"):
        voxceleb.m4a_duration(p)


def vox2_m4a(synth: Path, root: Path, content: bytes | None) -> dict[str, Path]:
    """VoxCeleb2 as released: the synthetic speakers as dev/aac/<spk>/<video>/<nnnnn>.m4a.
    Returns utterance id -> `<spk>/<video>/<nnnnn>` (video ids may hold `-`)."""
    utts = {}
    for f in sorted((synth / "voxceleb2" / "wav").glob("*/*/*.wav")):
        rel = f.relative_to(synth / "voxceleb2" / "wav").with_suffix("")
        dst = root / "dev" / "aac" / rel.with_suffix(".m4a")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(content if content is not None else m4a(sf.info(str(f)).duration))
        utts["-".join(rel.parts)] = rel
    return utts


def test_m4a_without_ffmpeg_stops_with_what_to_do(synth, tmp_path, monkeypatch):
    root = tmp_path / "voxceleb2"
    vox2_m4a(synth, root, b"")
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(CorpusError, match=r"\.m4a files .* ffmpeg is not on PATH. Install ffmpeg .* "
                                          r"or convert VoxCeleb2 to 16 kHz wav once") as e:
        voxceleb.prepare(None, root, tmp_path / "data")
    assert "find dev/aac -name '*.m4a'" in str(e.value)
    assert not (tmp_path / "data" / "vox2_dev").exists()


def test_m4a_is_read_through_an_ffmpeg_pipe(synth, tmp_path, monkeypatch):
    root = tmp_path / "voxceleb2"
    utts = vox2_m4a(synth, root, None)
    # a stand-in ffmpeg that writes what ffmpeg writes to a pipe: a wav whose sizes are unknown (0xFFFFFFFF)
    x = (np.random.default_rng(0).standard_normal(8000) * 1000).astype("<i2")
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    stream = tmp_path / "stream.wav"
    stream.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", 16) + fmt + b"data\xff\xff\xff\xff"
                       + x.tobytes())
    assert sf.read(io.BytesIO(stream.read_bytes()))[0].shape == (8000,)
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "ffmpeg"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/args\nexec cat {stream}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    # one utterance converted to wav: the wav is used
    (u0, r0), (u1, r1) = list(utts.items())[:2]
    conv = root / "dev" / "wav" / r0.with_suffix(".wav")
    conv.parent.mkdir(parents=True)
    shutil.copy(synth / "voxceleb2" / "wav" / r0.with_suffix(".wav"), conv)
    data = tmp_path / "data"
    voxceleb.prepare(None, root, data)
    d = datadir.DataDir(data / "vox2_dev")
    assert set(d.utt_ids()) == set(utts)
    assert d.wav_scp[u0] == str(conv)
    f = root / "dev" / "aac" / r1.with_suffix(".m4a")
    assert d.wav_scp[u1] == f"ffmpeg -nostdin -loglevel error -i {f} -f wav -ac 1 -ar 16000 - |"
    want = sf.info(str(synth / "voxceleb2" / "wav" / r1.with_suffix(".wav"))).duration
    assert d.utt2dur()[u1] == pytest.approx(want, abs=1e-3)
    assert datadir.validate(data / "vox2_dev", check_audio=True) == []  # every pipe runs and decodes
    wav, sr = d.load_audio(u1)
    assert sr == 16000 and np.allclose(wav * 32768, x)
    assert f"-i {f} -f wav -ac 1 -ar 16000 -" in (tmp_path / "args").read_text()


def test_local_data_sh(synth, tmp_path, env):
    recipe = recipe_sandbox(tmp_path, "voxceleb/sv1")
    v1, v2 = synth / "voxceleb1", synth / "voxceleb2"
    run(["./local/data.sh", "--vox1_root", str(v1), "--vox2_root", str(v2), "--train_sets", "vox2_dev vox1_dev"],
        env, cwd=recipe)
    data = recipe / "data"
    assert set(datadir.DataDir(data / "train").utt_ids()) == on_disk(v2) | on_disk(v1, meta_sets(v1).keys()
                                                                                    - {"id10270", "id10271"})
    assert all((data / "trials" / t).is_file() for t in LISTS)
    p = run(["./local/data.sh", "--vox1_root", str(v1), "--vox2_root", str(v2), "--train_sets", "vox2_dev vox1_dev"],
            env, cwd=recipe)
    assert f"{Path('data') / 'train'} is up to date" in p.stderr
    p = run(["./local/data.sh"], env, cwd=recipe, check=False)
    assert p.returncode != 0 and "give --vox1_root DIR" in p.stderr


def test_relative_roots_give_absolute_paths(synth, tmp_path, monkeypatch):
    monkeypatch.chdir(synth)
    assert prepare_data.main(["voxceleb", "--vox1_root", "voxceleb1", "--vox2_root", "voxceleb2",
                              "--data", str(tmp_path / "data"), "--train_sets", "vox2_dev", "vox1_dev"]) == 0
    for d in ("vox1_dev", "vox1_test", "vox1_all", "vox2_dev", "train"):
        for path in datadir.DataDir(tmp_path / "data" / d).wav_scp.rows.values():
            assert Path(path).is_absolute() and Path(path).is_file(), (d, path)


def test_trial_lists_asked_for_must_be_there(corpus, tmp_path, capsys):
    v1 = corpus / "voxceleb1"
    data = tmp_path / "data"
    (v1 / "list_test_hard2.txt").unlink()
    args = ["voxceleb", "--vox1_root", str(v1), "--data", str(data), "--train_sets", "--trial_lists"]
    assert prepare_data.main([*args, "vox1_O", "vox1_H"]) == 1
    assert f"trial list vox1_H asked for, but its source {v1 / 'list_test_hard2.txt'} is not there" in \
        capsys.readouterr().err
    assert prepare_data.main([*args, "vox1_O"]) == 0  # exactly those asked for
    assert sorted(p.name for p in (data / "trials").iterdir() if not p.name.startswith(".")) == ["vox1_O"]
    with pytest.raises(CorpusError, match=r"trial lists \['vox1_O'\] asked for, but no VoxCeleb1 root"):
        voxceleb.prepare(None, corpus / "voxceleb2", data, [], trial_lists=["vox1_O"])
    with pytest.raises(CorpusError, match=r"trial lists \['vox1_X'\] unknown"):
        voxceleb.prepare(v1, None, data, [], trial_lists=["vox1_X"])


def test_scoring_a_trial_list_that_is_not_there_is_an_error(tmp_path, env):
    recipe = recipe_sandbox(tmp_path, "voxceleb/sv1")
    p = run(["./run.sh", "--stage", "4", "--trial_lists", "vox1_E", "--hf_xvector", str(tmp_path)], env, cwd=recipe,
            check=False)
    assert p.returncode == 1 and "--trial_lists names vox1_E, but there is no data/trials/vox1_E" in p.stderr
