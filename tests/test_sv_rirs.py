"""The augmentation corpora for speaker verification as the real releases hold them: RIRS_NOISES' responses come
from its own rir_lists (simulated and real, AIR included, isotropic noises left out), multi-channel responses are
read through their first channel, and the augmenter reads every one of them; wav.scp paths are absolute."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_wav

from wavlm.bin.synth import main as synth
from wavlm.config import from_dict
from wavlm.data import datadir
from wavlm.data.audio import read_audio, read_utterance
from wavlm.data.augment import AugmentConfig, Augmenter
from wavlm.data.corpora.common import CorpusError
from wavlm.data.corpora.musan import prepare_musan, prepare_rirs
from wavlm.synth import rirs as synth_rirs


@pytest.fixture(scope="module")
def rirs_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rirs")
    synth(["--corpus", "rirs", "--out", str(out), "--seed", "1", "--rooms_per_type", "1", "--rirs_per_room", "2"])
    return out / "RIRS_NOISES"


@pytest.fixture
def corpus(rirs_corpus, tmp_path) -> Path:
    """A private copy, for tests that change it."""
    dst = tmp_path / "RIRS_NOISES"
    shutil.copytree(rirs_corpus, dst)
    return dst


def listed(root: Path, rel: str) -> list[str]:
    """The files a list names, as absolute paths."""
    return [str(root.parent / line.split()[-1]) for line in (root / rel).read_text().splitlines()]


def test_rirs_are_those_of_the_lists_real_ones_mono_through_sox(rirs_corpus, tmp_path):
    (rirs,) = prepare_rirs(rirs_corpus, tmp_path / "data")
    wav = datadir.DataDir(rirs).wav_scp
    simulated = [f for room in ("smallroom", "mediumroom", "largeroom")
                 for f in listed(rirs_corpus, f"simulated_rirs/{room}/rir_list")]
    real = listed(rirs_corpus, "real_rirs_isotropic_noises/rir_list")
    assert len(simulated) == 6 and len(real) == len(synth_rirs.REAL_RIRS)
    entries = [wav[u] for u in wav.keys()]
    # every listed response once, nothing else: the AIR responses in, the isotropic noises out
    named = sorted(e.split()[1] if e.endswith("|") else e for e in entries)
    assert named == sorted(simulated + real)
    assert any("air_type1_air_binaural" in e for e in entries)
    assert not any("_noise_" in e for e in entries)
    for e in entries:
        path = e.split()[1] if e.endswith("|") else e
        channels = sf.info(path).channels
        assert e == (f"sox {path} -t wav - remix 1 |" if channels > 1 else path)
        if channels > 1:  # the first channel, as Kaldi's wav-reverberate (--rir-channel=0)
            mono, _ = read_audio(e)
            assert np.allclose(mono, sf.read(path, dtype="float32")[0][:, 0], atol=1e-4)
    assert {sf.info(e.split()[1]).channels for e in entries if e.endswith("|")} == {2, 8}
    assert datadir.validate(rirs, channels=1) == []


def test_the_augmenter_reads_every_prepared_rir(rirs_corpus, tmp_path):
    (rirs,) = prepare_rirs(rirs_corpus, tmp_path / "data")
    d = datadir.DataDir(rirs)
    for utt in d.utt_ids():
        assert read_utterance(d, utt).ndim == 1
    aug = Augmenter(from_dict(AugmentConfig, {"prob": 1.0, "rir_data": str(rirs)}))
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    used = set()
    for s in range(60):
        out, info = aug(x, np.random.default_rng(s))
        assert info.kind == "reverb" and out.shape == x.shape and np.all(np.isfinite(out))
        used.update(info.sources)
    assert any("RVB2014" in u for u in used) and any("air_type1" in u for u in used)


def test_missing_or_absent_lists_are_named(corpus, tmp_path):
    real = corpus / "real_rirs_isotropic_noises"
    air = sorted(real.glob("air_type1_*.wav"))[0]
    air.unlink()
    line = next(n for n, text in enumerate((real / "rir_list").read_text().splitlines(), 1) if air.name in text)
    with pytest.raises(CorpusError, match=rf"{real / 'rir_list'}:{line}: {air} is missing .*partial download"):
        prepare_rirs(corpus, tmp_path / "data")
    (real / "rir_list").unlink()
    with pytest.raises(CorpusError, match=rf"{real}: no rir_list"):
        prepare_rirs(corpus, tmp_path / "data")
    shutil.rmtree(real)  # a folder that is not there is left out
    (rirs,) = prepare_rirs(corpus, tmp_path / "data")
    assert len(datadir.DataDir(rirs).utt_ids()) == 6
    with pytest.raises(CorpusError, match=r"none of simulated_rirs/smallroom/rir_list.* openslr.org resource 28"):
        prepare_rirs(corpus / "simulated_rirs", tmp_path / "data")


def test_rir_list_lines_are_checked(corpus, tmp_path):
    lst = corpus / "simulated_rirs" / "smallroom" / "rir_list"
    lines = lst.read_text().splitlines()
    for bad, what in ((lines[0].replace("--room-id", "--room"), "unknown option --room"),
                      (lines[0].split(" RIRS_NOISES")[0], "expected `--rir-id ID --room-id ROOM"),
                      ("--rir-id a --room-id b 'sox x.wav -t wav - |'", "pipes are not supported"),
                      (lines[1].replace("00002 --room-id", "00001 --room-id"), "--rir-id small-Room001-00001 also on")):
        lst.write_text("\n".join([lines[0], bad]) + "\n")
        with pytest.raises(CorpusError, match=rf"{lst}:2: .*{what}" if "also on" not in what
                           else rf"{lst}:2: {what} {lst}:1"):
            prepare_rirs(corpus, tmp_path / "data")
    # optional Kaldi fields and a renamed corpus directory are fine
    lst.write_text("\n".join([lines[0].replace("--room-id", "--rt60 0.4 --room-id"), lines[1]]) + "\n")
    renamed = corpus.rename(corpus.with_name("rirs_noises_v1"))
    (rirs,) = prepare_rirs(renamed, tmp_path / "data")
    assert all(str(renamed) in e for e in datadir.DataDir(rirs).wav_scp.rows.values())


def test_other_sample_rates_are_resampled(corpus, tmp_path):
    f = corpus / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav"
    write_wav(f, 0.2, sr=8000, channels=2)
    (rirs,) = prepare_rirs(corpus, tmp_path / "data")
    d = datadir.DataDir(rirs)
    assert d.wav_scp["rir-small-Room001-00001"] == f"sox {f} -t wav - remix 1 rate 16000 |"
    assert datadir.validate(rirs, check_audio=True, channels=1) == []
    assert len(read_utterance(d, "rir-small-Room001-00001")) == 3200


def test_relative_roots_give_absolute_paths(rirs_corpus, tmp_path, monkeypatch):
    for part in ("noise", "music"):
        write_wav(tmp_path / "musan" / part / "src" / f"{part}-src-0000.wav", 0.3)
    shutil.copytree(rirs_corpus, tmp_path / "RIRS_NOISES")
    monkeypatch.chdir(tmp_path)
    dirs = prepare_musan("musan", "data", ["noise", "music"]) + prepare_rirs("RIRS_NOISES", "data")
    for d in dirs:
        for entry in datadir.DataDir(d).wav_scp.rows.values():
            path = entry.split()[1] if entry.endswith("|") else entry
            assert os.path.isabs(path) and Path(path).is_file(), entry
