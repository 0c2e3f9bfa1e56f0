"""Libri-light preparation: utterances cut from the json voice activity stay inside speech, respect the
length limits and split at the longest pauses; ids are valid and sorted; bad json names the file."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import run, write_wav

from wavlm.bin import prepare_data
from wavlm.data import datadir
from wavlm.data.corpora import librilight
from wavlm.data.corpora.common import CorpusError


def make_corpus(root: Path, activity: dict[tuple[str, str, str], list], seconds: float = 40.0) -> Path:
    """Hand-written Libri-light files `<root>/small/<spk>/<book>/<name>.flac + .json`."""
    for (spk, book, name), va in activity.items():
        d = root / "small" / spk / book
        write_wav(d / f"{name}.flac", seconds)
        (d / f"{name}.json").write_text(json.dumps({"speaker": spk, "book_meta": {}, "snr": 20.0,
                                                    "voice_activity": va}))
    return root


def test_segment_splits_at_the_longest_pause():
    regions = [(0.0, 5.0), (5.2, 12.0), (14.0, 20.0), (20.5, 27.0), (27.3, 33.0)]
    # 33 s > 30: the longest pause (12 -> 14) splits it; both halves fit
    assert librilight.segment(regions, 30, 1) == [(0.0, 12.0), (14.0, 33.0)]
    assert librilight.segment(regions, 10, 1) == [(0.0, 5.0), (5.2, 12.0), (14.0, 20.0), (20.5, 27.0),
                                                  (27.3, 33.0)]
    assert librilight.segment([(1.0, 1.5), (3.0, 9.0)], 5, 1) == [(3.0, 6.0), (6.0, 9.0)]  # short piece dropped
    long = librilight.segment([(0.0, 70.0)], 30, 1)
    assert len(long) == 3 and all(e - s <= 30 for s, e in long) and long[-1][1] == 70.0


def test_prepare_synthetic_corpus(tmp_path, env):
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "librilight", "--out", str(tmp_path / "c"), "--seed", "0",
         "--num_speakers", "2", "--files_per_speaker", "1", "--utts_per_file", "6"], env)
    root = tmp_path / "c" / "librilight"
    for max_seconds in (30.0, 8.0):
        data = tmp_path / f"data{max_seconds:g}"
        assert prepare_data.main(["librilight", "--root", str(root), "--data", str(data),
                                  "--max_seconds", str(max_seconds)]) == 0
        d = data / "small"
        assert not datadir.validate(d, check_audio=True)
        dd = datadir.DataDir(d)
        segs, u2s, wavs = dd.segments, dd.utt2spk(), dd.wav_scp
        utts = list(u2s)
        assert utts == datadir.c_sorted(utts) and len(utts) >= 2
        vad = {}
        for rec in wavs.keys():
            path = Path(wavs[rec])
            spk, book = path.parent.parent.name, path.parent.name
            assert rec == f"{spk}-{book}-{path.stem}"
            vad[rec] = json.loads(path.with_suffix(".json").read_text())["voice_activity"]
        for utt, seg in segs.items():
            assert re.fullmatch(r"[A-Za-z0-9_-]+", utt) and utt.startswith(f"{seg.rec}-")
            assert seg.rec.startswith(f"{u2s[utt]}-")
            assert 1.0 <= seg.end - seg.start <= max_seconds
            assert any(a <= seg.start <= b for a, b in vad[seg.rec])  # starts and ends inside speech
            assert any(a <= seg.end <= b for a, b in vad[seg.rec])
        covered = sum(min(b, s.end) - max(a, s.start) for s in segs.values() for a, b in vad[s.rec]
                      if min(b, s.end) > max(a, s.start))
        speech = sum(b - a for v in vad.values() for a, b in v)
        assert covered > 0.9 * speech  # nothing but the pieces under min_seconds is lost
        assert set(u2s.values()) == {Path(wavs[r]).parent.parent.name for r in wavs.keys()}
    assert len(datadir.DataDir(tmp_path / "data8" / "small").utt2spk()) > \
        len(datadir.DataDir(tmp_path / "data30" / "small").utt2spk())
    before = (tmp_path / "data8" / "small" / "segments").stat().st_mtime_ns
    librilight.prepare(root, tmp_path / "data8", max_seconds=8.0)
    assert (tmp_path / "data8" / "small" / "segments").stat().st_mtime_ns == before  # up to date: skipped


def test_ids_are_sanitized(tmp_path):
    root = make_corpus(tmp_path / "ll", {("12", "my book (1)", "01 part.one"): [[0.5, 3.0]],
                                         ("7", "b", "x"): [[1.0, 2.5], [2.0, 4.0]]})
    (d,) = librilight.prepare(root, tmp_path / "data")
    utts = list(datadir.DataDir(d).utt2spk())
    assert utts == ["12-my_book__1_-01_part_one-0000050-0000300", "7-b-x-0000100-0000400"]  # overlaps merged


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid json"),
    ('{"speaker": "1"}', "no `voice_activity`"),
    ('{"voice_activity": [[2.0, 1.0]]}', "need 0 <= start < end"),
    ('{"voice_activity": [["a", 1.0]]}', "is not [start, end]"),
    ('{"voice_activity": [[1.0, 45.0]]}', "ends after the recording"),
    (None, "missing"),
])
def test_bad_json_names_the_file(tmp_path, content, message):
    root = make_corpus(tmp_path / "ll", {("1", "b", "ok"): [[1.0, 5.0]], ("1", "b", "bad"): [[1.0, 5.0]]})
    bad = root / "small" / "1" / "b" / "bad.json"
    if content is None:
        bad.unlink()
    else:
        bad.write_text(content)
    with pytest.raises(CorpusError, match=re.escape(message)) as e:
        librilight.prepare(root, tmp_path / "data")
    assert str(bad) in str(e.value)
    assert not (tmp_path / "data" / "small").exists()


def test_missing_subset_and_root(tmp_path):
    with pytest.raises(CorpusError, match="not a directory"):
        librilight.prepare(tmp_path / "nowhere", tmp_path / "data")
    root = make_corpus(tmp_path / "ll", {("1", "b", "x"): [[1.0, 5.0]]})
    with pytest.raises(CorpusError, match=r"\['medium'\] asked for are not under"):
        librilight.prepare(root, tmp_path / "data", ["small", "medium"])
    shutil.rmtree(root / "small" / "1")
    (root / "small" / "1").mkdir()
    with pytest.raises(CorpusError, match="no <spk>/<book>/\\*.flac"):
        librilight.prepare(root, tmp_path / "data")


def test_relative_root_gives_absolute_paths_and_an_empty_root_is_named(tmp_path, monkeypatch):
    make_corpus(tmp_path / "ll", {("1", "b", "x"): [[1.0, 5.0]], ("2", "c", "y"): [[0.5, 3.0]]})
    monkeypatch.chdir(tmp_path)
    (d,) = librilight.prepare("ll", "data")
    paths = wav_paths(d)
    assert paths == [str(tmp_path / "ll/small/1/b/x.flac"), str(tmp_path / "ll/small/2/c/y.flac")]
    for empty in ("", None):
        with pytest.raises(CorpusError, match=r"no Libri-light directory given \(the directory holding small/"):
            librilight.prepare(empty, "data")
    assert prepare_data.main(["librilight", "--root", "", "--data", "data"]) == 1


def wav_paths(d: Path) -> list[str]:
    return [line.split(maxsplit=1)[1] for line in (d / "wav.scp").read_text().splitlines()]
