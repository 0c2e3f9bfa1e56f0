"""Kaldi data-dir tools: each validation error class is caught naming file and line; the
manipulations keep dirs valid; wav.scp paths, pipes and segments are read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_data_dir, run, write_wav

from wavlm.data import datadir
from wavlm.data.audio import AudioError, check_audio, read_audio


@pytest.fixture
def ddir(tmp_path) -> Path:
    return make_data_dir(tmp_path / "data" / "train", {"spkA": 3, "spkB": 2, "spkC": 1})


def validate_cli(d: Path, root: Path, env, *extra: str):
    return run([f"{root}/utils/validate_data_dir.sh", *extra, str(d)], env, check=False)


def test_valid_dir_passes(ddir, root, env):
    p = validate_cli(ddir, root, env, "--audio", "--text")
    assert p.returncode == 0, p.stderr
    assert datadir.validate(ddir, check_audio=True) == []


def test_unsorted_is_caught_with_line(ddir, root, env):
    lines = (ddir / "text").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (ddir / "text").write_text("\n".join(lines) + "\n")
    p = validate_cli(ddir, root, env)
    assert p.returncode == 1
    assert f"{ddir}/text:3: not sorted in C locale" in p.stderr


def test_duplicate_id_is_caught_with_both_lines(ddir, root, env):
    lines = (ddir / "utt2spk").read_text().splitlines()
    lines.insert(1, lines[0])
    (ddir / "utt2spk").write_text("\n".join(lines) + "\n")
    errors = datadir.validate(ddir)
    assert any(f"{ddir}/utt2spk:2: duplicate id 'spkA-0000' (first seen on line 1)" in e for e in errors)
    assert validate_cli(ddir, root, env).returncode == 1


def test_missing_speaker_is_caught(ddir, root, env):
    lines = [ln for ln in (ddir / "utt2spk").read_text().splitlines() if not ln.startswith("spkB-0001")]
    (ddir / "utt2spk").write_text("\n".join(lines) + "\n")
    p = validate_cli(ddir, root, env)
    assert p.returncode == 1
    assert f"{ddir}/wav.scp:5: utterance spkB-0001 has no speaker in utt2spk" in p.stderr
    assert f"{ddir}/spk2utt:2: speaker spkB disagrees with utt2spk" in p.stderr


def test_spk2utt_missing_speaker_and_prefix_rule(tmp_path):
    d = make_data_dir(tmp_path / "d", {"a": 1, "b": 1})
    (d / "utt2spk").write_text("a-0000 zz\nb-0000 b\n")  # speaker not a prefix: split by speaker breaks
    errors = datadir.validate(d)
    assert any("speaker zz of utt2spk:1 is missing" in e for e in errors)
    assert any("make each speaker id a prefix" in e for e in errors)


def test_segment_outside_recording(tmp_path, root, env):
    d = tmp_path / "seg"
    write_wav(d / "rec1.wav", 2.0)
    (d / "wav.scp").write_text(f"rec1 {d}/rec1.wav\n")
    (d / "segments").write_text("s-rec1-a rec1 0.00 1.00\ns-rec1-b rec1 1.00 2.50\n")
    (d / "utt2spk").write_text("s-rec1-a s\ns-rec1-b s\n")
    (d / "spk2utt").write_text("s s-rec1-a s-rec1-b\n")
    assert datadir.validate(d) == []  # without audio the recording length is unknown
    p = validate_cli(d, root, env, "--audio")
    assert p.returncode == 1
    assert f"{d}/segments:2: segment s-rec1-b ends at 2.50s, after the end of recording rec1 (2.00s)" in p.stderr
    # reco2dur gives the length without reading audio
    (d / "reco2dur").write_text("rec1 2.0\n")
    assert any("segments:2" in e for e in datadir.validate(d))
    (d / "segments").write_text("s-rec1-a rec1 0.00 1.00\ns-rec1-b rec1 1.50 1.20\n")
    assert any("segments:2: bad segment times 1.5 1.2" in e for e in datadir.validate(d))


def test_unreadable_audio(ddir, root, env):
    (ddir / "wavs" / "spkB-0000.wav").write_bytes(b"RIFF0000WAVEnot really audio")
    p = validate_cli(ddir, root, env, "--audio")
    assert p.returncode == 1
    assert f"{ddir}/wav.scp:4 (recording spkB-0000): cannot read audio" in p.stderr
    assert validate_cli(ddir, root, env).returncode == 0  # headers are only read with --audio


def test_wrong_sample_rate(ddir, root, env):
    write_wav(ddir / "wavs" / "spkC-0000.wav", 0.5, sr=8000)
    p = validate_cli(ddir, root, env, "--audio")
    assert p.returncode == 1
    assert f"{ddir}/wav.scp:6: recording spkC-0000 has sample rate 8000 Hz, expected 16000 Hz" in p.stderr
    assert validate_cli(ddir, root, env, "--audio", "--sample-rate", "8000").returncode == 1  # others are 16k


def test_text_required_and_missing_lines(ddir):
    lines = (ddir / "text").read_text().splitlines()[:-1]
    (ddir / "text").write_text("\n".join(lines) + "\n")
    assert any(f"{ddir}/text: 1 utterances of utt2spk missing, e.g. spkC-0000" in e for e in datadir.validate(ddir))
    (ddir / "text").unlink()
    assert datadir.validate(ddir) == []
    assert any("text: missing" in e for e in datadir.validate(ddir, need_text=True))


def test_malformed_lines(ddir):
    (ddir / "utt2spk").write_text((ddir / "utt2spk").read_text() + "\n")
    assert any("utt2spk:7: empty line" in e for e in datadir.validate(ddir))
    with pytest.raises(datadir.DataDirError, match="has no value"):
        datadir.read_table(_write(ddir / "x", "a b\nc\n"))


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_fix_keeps_intersection_and_backup(ddir, root, env):
    (ddir / "text").write_text("".join(ln + "\n" for ln in (ddir / "text").read_text().splitlines()[1:]))
    (ddir / "utt2spk").write_text("".join(reversed((ddir / "utt2spk").read_text().splitlines(True))))
    run([f"{root}/utils/fix_data_dir.sh", str(ddir)], env)
    assert datadir.validate(ddir) == []
    assert "spkA-0000" not in (ddir / "wav.scp").read_text()
    assert len((ddir / "utt2spk").read_text().splitlines()) == 5
    assert (ddir / ".backup" / "wav.scp").read_text().count("\n") == 6


@pytest.mark.parametrize("per_utt", [False, True])
def test_split(ddir, per_utt):
    out = datadir.split(ddir, 3, per_utt=per_utt)
    assert out.name == ("split3utt" if per_utt else "split3")
    parts = [datadir.DataDir(out / str(j)).utt2spk() for j in (1, 2, 3)]
    assert all(parts)
    assert sorted(u for p in parts for u in p) == sorted(datadir.DataDir(ddir).utt2spk())
    if not per_utt:  # every speaker in exactly one part
        spks = [set(p.values()) for p in parts]
        assert sum(len(s) for s in spks) == len(set().union(*spks)) == 3
    for j in (1, 2, 3):
        assert datadir.validate(out / str(j)) == []
    mtime = (out / "1" / "utt2spk").stat().st_mtime_ns
    datadir.split(ddir, 3, per_utt=per_utt)  # up to date: left alone
    assert (out / "1" / "utt2spk").stat().st_mtime_ns == mtime
    with pytest.raises(datadir.DataDirError, match="cannot split 3 speakers into 4"):
        datadir.split(ddir, 4)


def test_split_ids_cover_in_order():
    ids = [f"u{i:03d}" for i in range(10)]
    parts = [datadir.split_ids(ids, 3, j) for j in (1, 2, 3)]
    assert sum(parts, []) == ids and [len(p) for p in parts] == [3, 3, 4]


def test_subset_combine_copy(ddir, tmp_path, root, env):
    run([f"{root}/utils/subset_data_dir.sh", "--first", "2", str(ddir), str(tmp_path / "first2")], env)
    assert datadir.DataDir(tmp_path / "first2").utt_ids() == ["spkA-0000", "spkA-0001"]
    run([f"{root}/utils/subset_data_dir.sh", "3", str(ddir), str(tmp_path / "even3")], env)
    assert len(datadir.DataDir(tmp_path / "even3").utt_ids()) == 3
    (tmp_path / "spks").write_text("spkB\n")
    run([f"{root}/utils/subset_data_dir.sh", "--spk-list", str(tmp_path / "spks"), str(ddir),
         str(tmp_path / "b")], env)
    assert set(datadir.DataDir(tmp_path / "b").utt2spk().values()) == {"spkB"}
    run([f"{root}/utils/copy_data_dir.sh", "--utt-prefix", "sp1-", "--spk-prefix", "sp1-", str(tmp_path / "b"),
         str(tmp_path / "b_sp")], env)
    copied = datadir.DataDir(tmp_path / "b_sp")
    assert copied.utt2spk() == {"sp1-spkB-0000": "sp1-spkB", "sp1-spkB-0001": "sp1-spkB"}
    assert copied.wav_scp.keys() == ["sp1-spkB-0000", "sp1-spkB-0001"]
    run([f"{root}/utils/combine_data.sh", str(tmp_path / "comb"), str(tmp_path / "first2"),
         str(tmp_path / "b_sp")], env)
    comb = tmp_path / "comb"
    assert len(datadir.DataDir(comb).utt_ids()) == 4 and datadir.validate(comb, check_audio=True) == []
    p = run([f"{root}/utils/combine_data.sh", str(tmp_path / "bad"), str(ddir), str(tmp_path / "b")], env)
    assert p.returncode == 0  # same ids with the same content are merged
    (tmp_path / "b" / "text").write_text("spkB-0000 OTHER\nspkB-0001 WORDS\n")
    p = run([f"{root}/utils/combine_data.sh", str(tmp_path / "bad"), str(ddir), str(tmp_path / "b")], env,
            check=False)
    assert p.returncode == 1 and "id spkB-0000 also in" in p.stderr


def test_utt2dur_from_audio_and_segments(ddir, root, env):
    run([f"{root}/utils/data/get_utt2dur.sh", str(ddir)], env)
    assert datadir.DataDir(ddir).utt2dur() == {u: 0.5 for u in datadir.DataDir(ddir).utt_ids()}
    assert datadir.validate(ddir) == []
    p = run([f"{root}/utils/data/get_utt2dur.sh", str(ddir)], env)
    assert "up to date" in p.stderr


def test_wav_scp_pipe_and_segments(tmp_path):
    d = tmp_path / "pipe"
    write_wav(d / "rec.wav", 1.0, sr=8000)
    (d / "wav.scp").write_text(f"rec sox {d}/rec.wav -r 16000 -t wav - |\n")
    (d / "segments").write_text("rec-a rec 0.25 0.75\n")
    (d / "utt2spk").write_text("rec-a rec\n")
    (d / "spk2utt").write_text("rec rec-a\n")
    dd = datadir.DataDir(d)
    wav, sr = dd.load_audio("rec-a")
    assert sr == 16000 and wav.shape == (8000,)
    assert [(u, w.shape) for u, w, _ in dd.iter_audio()] == [("rec-a", (8000,))]
    assert datadir.validate(d, check_audio=True) == []
    (d / "wav.scp").write_text("rec sox /nonexistent.wav -t wav - |\n")
    with pytest.raises(AudioError, match=r"wav.scp:1 \(utterance rec-a, recording rec\): pipe command failed"):
        datadir.DataDir(d).load_audio("rec-a")


def test_read_audio_ark(tmp_path):
    import kaldiio

    x = (np.arange(1600) % 100 * 100).astype(np.int16)
    kaldiio.save_ark(str(tmp_path / "w.ark"), {"u": (16000, x)}, scp=str(tmp_path / "w.scp"))
    spec = (tmp_path / "w.scp").read_text().split()[1]
    wav, sr = read_audio(spec)
    assert sr == 16000 and np.allclose(wav * 32768, x)


def test_check_audio_errors():
    ok = np.zeros(16000, np.float32)
    with pytest.raises(AudioError, match="u1: sample rate is 8000 Hz"):
        check_audio(ok, 8000, what="u1")
    with pytest.raises(AudioError, match="u1: audio has 2 channels"):
        check_audio(np.zeros((100, 2), np.float32), 16000, what="u1")
    assert check_audio(np.stack([ok, ok + 1], 1), 16000, what="u1", channel=1).mean() == 1
    with pytest.raises(AudioError, match="NaN or inf"):
        check_audio(np.array([0, np.nan], np.float32), 16000, what="u1")
    with pytest.raises(AudioError, match="empty"):
        check_audio(np.zeros(0, np.float32), 16000, what="u1")
    with pytest.raises(AudioError, match="fewer than the 400 needed"):
        check_audio(np.zeros(399, np.float32), 16000, what="u1", min_samples=400)


def test_channel_count_is_checked_when_asked(ddir, root, env):
    """RIRS_NOISES' real responses have 8 channels: `--channels 1` names the wav.scp line; a `remix 1` pipe passes."""
    write_wav(ddir / "wavs" / "spkB-0000.wav", 0.5, channels=8)
    assert validate_cli(ddir, root, env, "--audio").returncode == 0  # channels are only checked when asked
    p = validate_cli(ddir, root, env, "--channels", "1")
    assert p.returncode == 1
    assert f"{ddir}/wav.scp:4: recording spkB-0000 has 8 channels, expected 1" in p.stderr
    assert "remix 1" in p.stderr
    scp = ddir / "wav.scp"
    scp.write_text(scp.read_text().replace(f"{ddir}/wavs/spkB-0000.wav",
                                           f"sox {ddir}/wavs/spkB-0000.wav -t wav - remix 1 |"))
    assert datadir.validate(ddir, channels=1) == []
    assert datadir.validate(ddir, channels=2) != []


def test_subset_per_speaker(ddir, tmp_path, root, env):
    """The AS-norm cohort: N utterances (evenly spaced) of each of M speakers (evenly spaced)."""
    def subset(*opts: str) -> dict[str, str]:
        run([f"{root}/utils/subset_data_dir.sh", *opts, str(ddir), str(tmp_path / "sub")], env)
        assert datadir.validate(tmp_path / "sub") == []
        return datadir.DataDir(tmp_path / "sub").utt2spk()

    assert list(subset("--per-spk", "2")) == ["spkA-0000", "spkA-0002", "spkB-0000", "spkB-0001", "spkC-0000"]
    assert list(subset("--speakers", "2")) == ["spkA-0000", "spkA-0001", "spkA-0002", "spkC-0000"]
    assert list(subset("--speakers", "2", "--per-spk", "1")) == ["spkA-0001", "spkC-0000"]
    assert list(subset("--speakers", "9", "--per-spk", "9")) == datadir.DataDir(ddir).utt_ids()
    p = run([f"{root}/utils/subset_data_dir.sh", "--first", "2", "--per-spk", "1", str(ddir), str(tmp_path / "x")],
            env, check=False)
    assert p.returncode == 2 and "do not combine" in p.stderr
    p = run([f"{root}/utils/subset_data_dir.sh", "--per-spk", "0", str(ddir), str(tmp_path / "x")], env, check=False)
    assert p.returncode == 2 and "at least 1" in p.stderr
