"""Synthetic corpora: layouts as the real corpora, determinism, consistency of metadata with audio."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wavlm.bin.synth import main
from wavlm.synth.libricss import overlap_ratio
from wavlm.synth.vocab import VOCABULARY

SMALL = {
    "librispeech": [
        "--num_speakers",
        "3",
        "--num_eval_speakers",
        "2",
        "--utts_per_speaker",
        "4",
        "--lm_sentences",
        "50",
    ],
    "librilight": ["--num_speakers", "2", "--files_per_speaker", "1", "--utts_per_file", "5"],
    "voxceleb": [
        "--num_speakers",
        "3",
        "--num_eval_speakers",
        "3",
        "--num_vox2_speakers",
        "2",
        "--videos_per_speaker",
        "2",
        "--utts_per_video",
        "2",
        "--num_trials",
        "40",
    ],
    "libricss": ["--conditions", "0S,OV20,OV40", "--session_speakers", "3", "--session_utts", "6"],
    "musan": ["--files_per_source", "1"],
    "rirs": ["--rooms_per_type", "1", "--rirs_per_room", "2"],
}


def synth(corpus: str, out: Path, seed: int = 0) -> Path:
    main(["--corpus", corpus, "--out", str(out), "--seed", str(seed), "--nj", "2", *SMALL[corpus]])
    return out


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    for c in SMALL:
        synth(c, out)
    return out


def words_ok(text: str) -> bool:
    return bool(text) and all(w in VOCABULARY for w in text.split())


def test_librispeech_layout(corpora: Path) -> None:
    root = corpora / "LibriSpeech"
    spk_by_subset: dict[str, set[str]] = {}
    for subset in ("train-clean-100", "dev-clean", "test-clean"):
        trans = sorted((root / subset).glob("*/*/*.trans.txt"))
        assert trans, subset
        for t in trans:
            spk, chap = t.parent.parent.name, t.parent.name
            assert t.name == f"{spk}-{chap}.trans.txt"
            for line in t.read_text().splitlines():
                uid, text = line.split(" ", 1)
                assert re.fullmatch(rf"{spk}-{chap}-\d{{4}}", uid)
                assert words_ok(text) and text == text.upper()
                info = sf.info(str(t.parent / f"{uid}.flac"))
                assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            spk_by_subset.setdefault(subset, set()).add(spk)
    subsets = list(spk_by_subset.values())
    assert all(not (a & b) for i, a in enumerate(subsets) for b in subsets[i + 1 :]), "speakers shared"
    rows = [r for r in (root / "SPEAKERS.TXT").read_text().splitlines() if not r.startswith(";")]
    assert {r.split("|")[0].strip() for r in rows} == set().union(*subsets)
    assert all(r.split("|")[1].strip() in ("M", "F") for r in rows)
    lm = (corpora / "librispeech_lm" / "librispeech-lm-norm.txt").read_text().splitlines()
    assert len(lm) == 50 and all(words_ok(s) for s in lm)
    ft = corpora / "librispeech_finetuning"
    for leaf in [f"1h/{k}/{c}" for k in range(6) for c in ("clean", "other")] + ["9h/clean", "9h/other"]:
        assert list((ft / leaf).glob("*/*/*.trans.txt")) and list((ft / leaf).glob("*/*/*.flac")), leaf


def test_librispeech_lm_resources(corpora: Path) -> None:
    """openslr 11's files beside the LM text: a word 4-gram ARPA over it and a pronunciation lexicon."""
    from wavlm.decode.lexicon import read_lexicon
    from wavlm.decode.ngram import check_lm, read_arpa

    d = corpora / "librispeech_lm"
    assert check_lm(d / "4-gram.arpa.gz", full=True) == "arpa"
    lm = read_arpa(d / "4-gram.arpa.gz")
    assert lm.order == 4 and all(lm.prob)
    assert {g[0] for g in lm.prob[0]} == set(VOCABULARY) | {"<s>", "</s>", "<unk>"}
    text = (d / "librispeech-lm-norm.txt").read_text().split()
    assert all(g[1] in text for g in lm.prob[1] if g[1] != "</s>")  # estimated on the LM text
    lines = (d / "librispeech-lexicon.txt").read_text().splitlines()
    assert all(re.fullmatch(r"[A-Z']+\t\S+( \S+)*", line) for line in lines)
    entries = read_lexicon(d / "librispeech-lexicon.txt")
    assert [e.word for e in entries] == sorted(e.word for e in entries)
    assert {e.word for e in entries} == set(VOCABULARY)
    prons: dict[str, set] = {}
    for e in entries:
        assert not any(p[0] in "',%" for p in e.units), e  # stress as a digit after the vowel, as in ARPAbet
        prons.setdefault(e.word, set()).add(e.units)
    assert len(entries) == sum(len(p) for p in prons.values())
    assert {w for w, p in prons.items() if len(p) == 2} == {"A", "READ", "THE", "WIND"}
    assert prons["READ"] == {("r", "i:1", "d"), ("r", "E1", "d")}


def test_librilight_voice_activity(corpora: Path) -> None:
    jsons = sorted((corpora / "librilight" / "small").glob("*/*/*.json"))
    assert len(jsons) == 2
    for j in jsons:
        meta = json.loads(j.read_text())
        assert meta["speaker"] == j.parent.parent.name
        assert {"id", "title", "authors", "genre"} <= set(meta["book_meta"]) and "snr" in meta
        x, sr = sf.read(str(j.with_suffix(".flac")))
        assert sr == 16000 and x.ndim == 1
        va = meta["voice_activity"]
        assert len(va) == 5
        mask = np.zeros(len(x), bool)
        for s, e in va:
            seg = x[int(s * sr) : int(e * sr)]
            assert e > s and np.sqrt(np.mean(seg**2)) > 0.01
            mask[int(s * sr) - 1 : int(e * sr) + 2] = True
        assert np.max(np.abs(x[~mask])) < 2e-3, "energy outside voice_activity"
        assert all(va[i][1] < va[i + 1][0] for i in range(len(va) - 1))


def test_voxceleb_trials(corpora: Path) -> None:
    v1 = corpora / "voxceleb1"
    meta = (v1 / "vox1_meta.csv").read_text().splitlines()
    assert meta[0].split("\t")[0] == "VoxCeleb1 ID" and len(meta) == 7
    for name in ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt"):
        lines = (v1 / name).read_text().splitlines()
        assert len(lines) == 40
        labels = [line.split()[0] for line in lines]
        assert labels.count("1") == labels.count("0") == 20
        for line in lines:
            lab, a, b = line.split()
            assert re.fullmatch(r"id\d{5}/[A-Za-z0-9_-]{11}/\d{5}\.wav", a)
            assert (v1 / "wav" / a).is_file() and (v1 / "wav" / b).is_file()
            assert (a.split("/")[0] == b.split("/")[0]) == (lab == "1")
            if name == "veri_test2.txt":
                assert int(a[2:7]) >= 10270 and int(b[2:7]) >= 10270
    info = sf.info(str(next((v1 / "wav").glob("*/*/*.wav"))))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert list((corpora / "voxceleb2" / "wav").glob("id0*/*/*.wav"))


def test_libricss(corpora: Path) -> None:
    rel = corpora / "LibriCSS" / "for_release"
    assert sorted(p.name for p in rel.iterdir()) == ["0S", "OV20", "OV40"]
    for cond_dir in rel.iterdir():
        (sess,) = list(cond_dir.iterdir())
        m = re.fullmatch(r"overlap_ratio_(\d+\.\d)_sil([\d.]+)_([\d.]+)_session0_actual(\d+\.\d)", sess.name)
        assert m, sess.name
        x, sr = sf.read(str(sess / "record" / "raw_recording.wav"))
        assert sr == 16000 and x.shape[1] == 7
        rows = (sess / "transcription" / "meeting_info.txt").read_text().splitlines()
        assert rows[0].split("\t") == ["start_time", "end_time", "speaker", "utterance_id", "transcription"]
        segs = []
        for r in rows[1:]:
            s, e, spk, uid, text = r.split("\t")
            assert uid.startswith(spk + "-") and words_ok(text)
            segs.append((float(s), float(e)))
            assert 0 <= float(s) < float(e) <= len(x) / sr
        actual = overlap_ratio(segs, len(x) / sr)
        assert abs(actual - float(m.group(4))) < 0.6
        target = 0.0 if cond_dir.name == "0S" else float(cond_dir.name[2:])
        assert float(m.group(1)) == target and abs(actual - target) < 6
        if target == 0:
            assert actual == 0.0


def test_musan_rirs(corpora: Path) -> None:
    for kind, src in (("noise", "free-sound"), ("music", "fma"), ("speech", "librivox")):
        d = corpora / "musan" / kind / src
        assert (d / f"{kind}-{src}-0000.wav").is_file() and (d / "ANNOTATIONS").is_file()
        assert sf.info(str(d / f"{kind}-{src}-0000.wav")).samplerate == 16000
    base = corpora / "RIRS_NOISES" / "simulated_rirs"
    for rtype in ("smallroom", "mediumroom", "largeroom"):
        lines = (base / rtype / "rir_list").read_text().splitlines()
        assert len(lines) == 2
        for line in lines:
            f = line.split()
            assert f[0] == "--rir-id" and f[2] == "--room-id"
            h, sr = sf.read(str(corpora / f[4]))
            assert sr == 16000 and h.ndim == 1 and np.argmax(np.abs(h)) < len(h) // 2


def test_rirs_real_responses_and_noises_as_the_real_release(corpora: Path) -> None:
    """real_rirs_isotropic_noises/: 8-channel RVB2014 and 2-channel AIR responses in rir_list, 8-channel isotropic
    noises in noise_list only (not responses, though in the same folder); pointsource_noises/ with its noise_list."""
    real = corpora / "RIRS_NOISES" / "real_rirs_isotropic_noises"

    def files(lst: Path, kind: str) -> dict[str, int]:
        out = {}
        for line in lst.read_text().splitlines():
            f = line.split()
            assert f[0] == f"--{kind}-id" and f[-1].startswith("RIRS_NOISES/"), line
            out[Path(f[-1]).name] = sf.info(str(corpora / f[-1])).channels
        return out

    rirs = files(real / "rir_list", "rir")
    assert {n: c for n, c in rirs.items() if n.startswith("RVB2014")} and all(
        c == 8 for n, c in rirs.items() if n.startswith("RVB2014"))
    air = {n: c for n, c in rirs.items() if n.startswith("air_type1_air_binaural_")}
    assert air and set(air.values()) == {2}
    assert 1 in rirs.values()  # a mono one too
    noises = files(real / "noise_list", "noise")
    assert noises and set(noises.values()) == {8} and not set(noises) & set(rirs)
    iso = (real / "noise_list").read_text().splitlines()
    assert all("--noise-type isotropic --room-linkage" in line for line in iso)
    assert {p.name for p in real.glob("*.wav")} == set(rirs) | set(noises)
    points = files(corpora / "RIRS_NOISES" / "pointsource_noises" / "noise_list", "noise")
    assert points and set(points.values()) == {1}


def test_deterministic_and_idempotent(corpora: Path, tmp_path: Path) -> None:
    for corpus in ("librispeech", "libricss"):
        synth(corpus, tmp_path / "a")
        a = digest(tmp_path / "a")
        assert a, corpus
        ref = digest(corpora)
        assert all(ref[k] == v for k, v in a.items()), f"{corpus}: same seed gave different bytes"
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*") if p.is_file()}
        synth(corpus, tmp_path / "a")  # complete: skipped, nothing rewritten
        assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*") if p.is_file()}
    synth("librispeech", tmp_path / "b", seed=1)
    b = digest(tmp_path / "b")
    lm = "librispeech_lm/librispeech-lm-norm.txt"
    assert a[lm] != b[lm], "different seeds gave the same LM text"
    flac_a = {v for k, v in a.items() if k.endswith(".flac")}
    flac_b = {v for k, v in b.items() if k.endswith(".flac")}
    assert flac_a and flac_b and not flac_a & flac_b, "different seeds gave identical audio"


def test_other_options_refused(tmp_path: Path) -> None:
    synth("rirs", tmp_path)
    with pytest.raises(RuntimeError, match="other parameters"):
        main(["--corpus", "rirs", "--out", str(tmp_path), "--rooms_per_type", "2", "--rirs_per_room", "1"])
