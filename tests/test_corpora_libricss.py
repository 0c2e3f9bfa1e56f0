"""LibriCSS preparation on the synthetic corpus (data dirs against meeting_info.txt, errors naming the file and
line, idempotence) and the utterance-wise evaluation (cutting streams, keeping the lowest-WER stream) on
constructed signals."""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run

from wavlm.data import datadir
from wavlm.data.corpora import libricss
from wavlm.data.corpora.common import CorpusError
from wavlm.metrics import css_eval

CONDS = ("0S", "OV10")


@pytest.fixture(scope="module")
def synth(tmp_path_factory, env) -> Path:
    """One session per condition, 2 speakers, 4 utterances: LibriCSS/for_release/<cond>/<session>/..."""
    out = tmp_path_factory.mktemp("libricss")
    run(["python", "-m", "wavlm.bin.synth", "--corpus", "libricss", "--out", str(out), "--seed", "0", "--nj", "1",
         "--conditions", ",".join(CONDS), "--num_sessions", "1", "--session_speakers", "2", "--session_utts", "4"],
        env)
    return out / "LibriCSS"


@pytest.fixture
def corpus(synth, tmp_path) -> Path:
    """A private copy of for_release/, for tests that change it."""
    dst = tmp_path / "LibriCSS"
    shutil.copytree(synth / "for_release", dst / "for_release")
    return dst


def session(root: Path, cond: str) -> Path:
    (s,) = sorted((root / "for_release" / cond).iterdir())
    return s


def meeting_rows(sess: Path) -> list[list[str]]:
    return [line.split("\t") for line in (sess / "transcription" / "meeting_info.txt").read_text().splitlines()[1:]]


def test_data_dirs_match_meeting_info_and_a_second_run_skips(synth, tmp_path, caplog):
    data = tmp_path / "data"
    assert libricss.prepare(synth, data) == [data / f"libricss_{c}" for c in CONDS]
    for cond in CONDS:
        d = data / f"libricss_{cond}"
        assert datadir.validate(d, check_audio=True, need_text=True) == [], cond
        dd = datadir.DataDir(d)
        sess = session(synth, cond)
        rows = meeting_rows(sess)
        rec = f"{cond}_session0"
        assert dict(dd.wav_scp.rows) == {rec: str((sess / "record" / "raw_recording.wav").resolve())}
        segs, text, u2s = dd.segments, dd.text(), dd.utt2spk()
        assert len(segs) == len(rows) == 4
        for start, end, spk, uid, words in rows:
            utt = f"{spk}-{rec}-{uid}"
            assert (segs[utt].rec, segs[utt].start, segs[utt].end) == (rec, float(start), float(end))
            assert text[utt] == words and u2s[utt] == spk
        utt = next(iter(segs))
        wav, sr = dd.load_audio(utt)
        assert sr == 16000 and wav.shape == (round(segs[utt].end * sr) - round(segs[utt].start * sr), 7)
        durs = dd.utt2dur()
        assert all(abs(durs[u] - (s.end - s.start)) < 1e-3 for u, s in segs.items())
    before = {f: f.stat().st_mtime_ns for f in data.rglob("*") if f.is_file()}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wavlm.data.corpora"):
        libricss.prepare(synth / "for_release", data, ["OV10", "0S"])  # for_release/ itself as root
    assert sum("is up to date" in r.getMessage() for r in caplog.records) == 2
    assert {f: f.stat().st_mtime_ns for f in data.rglob("*") if f.is_file()} == before


def test_changed_meeting_info_remakes_the_dir(corpus, tmp_path):
    data = tmp_path / "data"
    libricss.prepare(corpus, data, ["OV10"])
    info = session(corpus, "OV10") / "transcription" / "meeting_info.txt"
    lines = info.read_text().splitlines()
    info.write_text("\n".join(lines[:-1]) + "\n")  # one utterance fewer
    libricss.prepare(corpus, data, ["OV10"])
    assert len(datadir.DataDir(data / "libricss_OV10").utt_ids()) == len(lines) - 2


@pytest.mark.parametrize("channels,sr,what", [(1, 16000, "1 channel(s) at 16000 Hz"),
                                              (7, 8000, "7 channel(s) at 8000 Hz")])
def test_wrong_recording_format_names_the_file(corpus, tmp_path, channels, sr, what):
    data = tmp_path / "data"
    libricss.prepare(corpus, data, ["OV10"])
    wav = session(corpus, "OV10") / "record" / "raw_recording.wav"
    x, _ = sf.read(str(wav))
    sf.write(str(wav), x[:, :channels] if channels == 1 else x[::2], sr)
    with pytest.raises(CorpusError) as e:
        libricss.prepare(corpus, data, ["OV10"])
    assert str(wav) in str(e.value) and what in str(e.value) and "7 channels at 16000 Hz" in str(e.value)
    assert datadir.validate(data / "libricss_OV10") == []  # the data dir made before is kept


BAD_LINES = {
    "fields": (lambda r: "\t".join(r[:4]), "expected 5 tab-separated fields"),
    "number": (lambda r: "\t".join(["1.2.3"] + r[1:]), "must be numbers"),
    "order": (lambda r: "\t".join([r[1], r[0]] + r[2:]), "need 0 <= start_time < end_time"),
    "beyond": (lambda r: "\t".join([r[0], "999.000"] + r[2:]), "after the end of the recording"),
    "speaker": (lambda r: "\t".join(r[:2] + ["a b"] + r[3:]), "speaker 'a b'"),
    "text": (lambda r: "\t".join(r[:4] + [""]), "has no transcription"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_malformed_meeting_info_line_names_file_and_line(corpus, tmp_path, kind):
    info = session(corpus, "0S") / "transcription" / "meeting_info.txt"
    lines = info.read_text().splitlines()
    change, what = BAD_LINES[kind]
    lines[2] = change(lines[2].split("\t"))
    info.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as e:
        libricss.prepare(corpus, tmp_path / "data")
    assert f"{info}:3:" in str(e.value) and what in str(e.value)
    assert not (tmp_path / "data" / "libricss_0S").exists()


def test_header_duplicates_and_layout_errors(corpus, tmp_path):
    data = tmp_path / "data"
    info = session(corpus, "0S") / "transcription" / "meeting_info.txt"
    lines = info.read_text().splitlines()
    info.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{info}:1: expected the header")):
        libricss.prepare(corpus, data, ["0S"])
    info.write_text("\n".join(lines + [lines[1]]) + "\n")
    dup = f"{info}:{len(lines) + 1}: utterance_id {lines[1].split(chr(9))[3]} is also on {info}:2"
    with pytest.raises(CorpusError, match=re.escape(dup)):
        libricss.prepare(corpus, data, ["0S"])
    with pytest.raises(CorpusError, match=r"subsets \['OV40'\] asked for are not under"):
        libricss.prepare(corpus, data, ["0S", "OV40"])
    (session(corpus, "OV10") / "record" / "raw_recording.wav").unlink()
    with pytest.raises(CorpusError, match="raw_recording.wav: missing"):
        libricss.prepare(corpus, data, ["OV10"])
    with pytest.raises(CorpusError, match="is this LibriCSS"):
        libricss.prepare(tmp_path, data)


# ---- utterance-wise evaluation on constructed signals -------------------------------------------------------

SR = 16000
BLOCK = 400  # 25 ms; a word is a tone of 400 * (k + 1) Hz filling one block (an exact FFT bin)
VOCAB = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L"]


def say(words: str, gain: float = 1.0) -> np.ndarray:
    t = np.arange(BLOCK) / SR
    return np.concatenate([gain * np.sin(2 * np.pi * 400 * (VOCAB.index(w) + 1) * t) for w in words.split()])


def recognise(x: np.ndarray) -> str:
    """Word per non-silent block from its spectral peak: blind to the level, as a recogniser should be."""
    words = []
    for i in range(0, len(x) - BLOCK + 1, BLOCK):
        b = x[i : i + BLOCK]
        if np.max(np.abs(b)) > 1e-6:
            words.append(VOCAB[int(np.argmax(np.abs(np.fft.rfft(b)))) // 10 - 1])
    return " ".join(words)


def test_cut_utterances_exact_samples_and_shapes():
    streams = np.stack([np.arange(SR * 2, dtype=float), -np.arange(SR * 2, dtype=float)])
    cuts = css_eval.cut_utterances(streams, {"u1": (0.5, 1.0), "u2": (1.25, 2.005)}, SR)
    assert list(cuts) == ["u1", "u2"] and len(cuts["u1"]) == 2
    np.testing.assert_array_equal(cuts["u1"][0], np.arange(8000, 16000))
    np.testing.assert_array_equal(cuts["u1"][1], -np.arange(8000, 16000))
    np.testing.assert_array_equal(cuts["u2"][0], np.arange(20000, 32000))  # 5 ms past the end: rounding, clipped
    multi = css_eval.cut_utterances([np.zeros((SR, 7))], {"u": (0.1, 0.2)}, SR)
    assert multi["u"][0].shape == (1600, 7)  # a 7-channel mixture is cut the same way
    with pytest.raises(css_eval.CSSEvalError, match="utterance u: segment ends at 2.500 s, after the end"):
        css_eval.cut_utterances(streams, {"u": (1.0, 2.5)}, SR)
    with pytest.raises(css_eval.CSSEvalError, match="utterance u: bad segment"):
        css_eval.cut_utterances(streams, {"u": (1.0, 1.0)}, SR)


def test_the_lowest_wer_stream_is_kept_not_the_loudest():
    """Two talkers overlap; stream 0 carries u1 and stream 1 u2, and the wrong stream is always 10x louder."""
    refs = {"u1": "A B C", "u2": "D E F G"}
    gap = np.zeros(BLOCK)
    s0 = np.concatenate([say("A B C"), gap, say("H", 10), say("I J", 10), gap])
    s1 = np.concatenate([say("K L L", 10), gap, say("D E H G")])
    assert len(s0) == len(s1)
    segs = {"u1": (0.0, 3 * BLOCK / SR), "u2": (4 * BLOCK / SR, 8 * BLOCK / SR)}
    cuts = css_eval.cut_utterances([s0, s1], segs, SR)
    res = css_eval.utterance_wise_wer(cuts, refs, recognise)
    c1, c2 = res.choices["u1"], res.choices["u2"]
    assert (c1.index, c1.hypothesis, c1.errors_per_stream) == (0, "A B C", (0, 3))
    assert (c2.index, c2.hypothesis, c2.errors) == (1, "D E H G", 1)
    assert c2.errors_per_stream == (4, 1)  # H I J against D E F G
    assert (res.errors, res.n_ref) == (1, 7) and res.wer == pytest.approx(100 / 7)
    assert res.stream_counts() == [1, 1] and "[ 1 / 7 ]" in res.summary()


def test_pick_lowest_wer_ties_and_errors():
    c = css_eval.pick_lowest_wer(["A X", "X B", "A B"], "A B")
    assert (c.index, c.errors_per_stream) == (2, (1, 1, 0))
    assert css_eval.pick_lowest_wer(["A X", "X B"], "A B").index == 0  # the first of equals
    with pytest.raises(css_eval.CSSEvalError, match="utterance u: no stream hypotheses"):
        css_eval.pick_lowest_wer([], "A", "u")
    with pytest.raises(css_eval.CSSEvalError, match="empty reference"):
        css_eval.pick_lowest_wer(["A"], "  ")
    with pytest.raises(css_eval.CSSEvalError, match="have no reference transcript, e.g. u9"):
        css_eval.utterance_wise_wer({"u9": [np.zeros(BLOCK)]}, {}, recognise)


def test_relative_root_gives_absolute_paths_and_an_empty_root_is_named(synth, tmp_path, monkeypatch):
    monkeypatch.chdir(synth.parent)
    (d, _) = libricss.prepare(synth.name, tmp_path / "data")
    paths = wav_paths(d)
    assert paths and all(p.startswith(f"{synth}/for_release/") and Path(p).is_file() for p in paths), paths
    with pytest.raises(CorpusError, match="no LibriCSS directory given"):
        libricss.prepare("", tmp_path / "data")


def wav_paths(d: Path) -> list[str]:
    return [line.split(maxsplit=1)[1] for line in (d / "wav.scp").read_text().splitlines()]
