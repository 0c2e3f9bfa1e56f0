"""Libri2Mix: the simulator (LibriMix's rules and layout) and the reader that makes diarization data dirs."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment

from wavlm.bin import prepare_data, simulate_librimix
from wavlm.bin.synth import main as synth_main
from wavlm.data import datadir
from wavlm.data import librimix_sim as sim
from wavlm.data.corpora import librispeech
from wavlm.data.corpora import musan as musan_corpus
from wavlm.data.corpora.common import CorpusError
from wavlm.data.corpora.librimix import overlap_ratio, prepare_librimix, speech_activity

SR = 16000
HEADER_7 = "mixture_ID,original_mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length"
HEADER_6 = "mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length"
SPLITS = {"train-100": 4, "dev": 3, "test": 3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Libri2Mix (with the synthetic LibriSpeech and MUSAN it is made from)."""
    out = tmp_path_factory.mktemp("librimix")
    synth_main(["--corpus", "librimix", "--out", str(out), "--seed", "0", "--nj", "2", "--num_speakers", "3",
                "--num_eval_speakers", "2", "--utts_per_speaker", "4", "--lm_sentences", "20", "--no_finetuning",
                "--files_per_source", "1", "--librimix_mixtures", ",".join(map(str, SPLITS.values()))])
    return out


def max_dir(root: Path) -> Path:
    return root / "Libri2Mix" / "wav16k" / "max"


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read(path: str | Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float64")
    assert sr == SR and x.ndim == 1
    return x


def read_rttm(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    out: dict[str, list[tuple[str, float, float]]] = {}
    for line in path.read_text().splitlines():
        f = line.split()
        assert len(f) == 10 and f[0] == "SPEAKER" and f[2] == "1", line
        out.setdefault(f[1], []).append((f[7], float(f[3]), float(f[3]) + float(f[4])))
    return out


def test_layout_as_librimix_and_mixtures_add_up(corpus: Path) -> None:
    for split, n in SPLITS.items():
        both = max_dir(corpus) / "metadata" / f"mixture_{split}_mix_both.csv"
        clean = both.with_name(f"mixture_{split}_mix_clean.csv")
        assert both.read_text().splitlines()[0] == HEADER_7
        assert clean.read_text().splitlines()[0] == HEADER_7.replace(",noise_path", "")
        table = rows(both)
        assert len(table) == n and [r["mixture_ID"] for r in rows(clean)] == [r["mixture_ID"] for r in table]
        for r in table:
            u1, u2 = r["mixture_ID"].split("_")
            assert u1.split("-")[0] != u2.split("-")[0] and r["original_mixture_ID"] == r["mixture_ID"]
            x = {k: read(r[k]) for k in ("mixture_path", "source_1_path", "source_2_path", "noise_path")}
            assert {len(v) for v in x.values()} == {int(r["length"])}
            for k, sub in (("mixture_path", "mix_both"), ("source_1_path", "s1"), ("source_2_path", "s2"),
                           ("noise_path", "noise")):
                assert Path(r[k]) == max_dir(corpus) / split / sub / f"{r['mixture_ID']}.wav"
            lsb = 1 / 32768
            assert np.max(np.abs(x["mixture_path"] - x["source_1_path"] - x["source_2_path"] - x["noise_path"])) \
                <= 2 * lsb
            assert np.max(np.abs(read(max_dir(corpus) / split / "mix_clean" / f"{r['mixture_ID']}.wav")
                                 - x["source_1_path"] - x["source_2_path"])) <= 1.5 * lsb
            assert np.max(np.abs(x["mixture_path"])) <= sim.MAX_AMP + lsb


def test_levels_and_snrs_as_drawn(corpus: Path) -> None:
    meter = pyloudnorm.Meter(SR)
    for split in SPLITS:
        for g in rows(max_dir(corpus) / "metadata" / f"mixture_{split}_gains.csv"):
            scale_db = 20 * np.log10(float(g["scale"]))
            loud = {}
            for k, sub in (("source_1", "s1"), ("source_2", "s2"), ("noise", "noise")):
                y = read(max_dir(corpus) / split / sub / f"{g['mixture_ID']}.wav")
                loud[k] = meter.integrated_loudness(y)
                target = float(g[f"{k}_LUFS"])
                assert abs(loud[k] - (target + scale_db)) < 0.5, (g["mixture_ID"], k, loud[k], target)
                lo, hi = (-38, -30) if k == "noise" else (-33, -25)
                # drawn in LibriMix's range, unless the source alone would clip (then its peak is 0.9)
                assert lo <= target <= hi or abs(np.max(np.abs(y)) / float(g["scale"]) - 0.9) < 1e-3
                # the gain is the factor from the input file to the written source
                x = read(g[f"{k}_path"])
                if k == "noise":
                    x = sim.loop_noise(x, len(y))
                start = int(round(float(g["source_2_offset"]) * SR)) if k == "source_2" else 0
                assert np.max(np.abs(y[start:start + len(x)] - float(g[f"{k}_gain"]) * x[:len(y) - start])) < 2 / 32768
            # SNRs recomputed from the written files: speech over noise, and between the speakers
            for a, b in (("source_1", "noise"), ("source_2", "noise"), ("source_1", "source_2")):
                drawn = float(g[f"{a}_LUFS"]) - float(g[f"{b}_LUFS"])
                assert abs((loud[a] - loud[b]) - drawn) < 0.5


def test_clipping_rules_of_librimix() -> None:
    t = np.arange(2 * SR) / SR
    sine = np.sin(2 * np.pi * 997 * t)
    # BS.1770: a full-scale 997 Hz sine is -3.01 LUFS, so -30 LUFS is an amplitude of 10 ** (-26.99 / 20)
    (y,), applied, scale = sim.normalise_and_mix([0.5 * sine], [-30.0], ["sine"])
    assert scale == 1.0 and applied == [-30.0]
    assert np.max(np.abs(y)) == pytest.approx(10 ** ((-30 + 3.01) / 20), rel=0.02)
    # at -2 LUFS each sine would peak above 1: each is scaled to a peak of 0.9 instead; in phase their sum (1.8)
    # clips, so everything is scaled by 0.9 / 1.8
    out, applied, scale = sim.normalise_and_mix([0.3 * sine, 0.5 * sine], [-2.0, -2.0], ["a", "b"])
    assert scale == pytest.approx(0.5)
    assert [np.max(np.abs(y)) for y in out] == pytest.approx([0.45, 0.45])
    assert applied == pytest.approx([20 * np.log10(0.9) - 3.01] * 2, abs=0.15)
    with pytest.raises(sim.LibriMixSimError, match="silent"):
        sim.normalise_and_mix([np.zeros(SR)], [-30.0], ["utterance 1-2-3"])


def test_speech_activity_bridges_pauses_and_drops_clicks() -> None:
    x = np.zeros(4 * SR)
    tone = 0.5 * np.sin(2 * np.pi * 200 * np.arange(4 * SR) / SR)
    for a, b in ((0.5, 1.0), (1.1, 1.5), (2.0, 2.5), (3.0, 3.04)):  # a 0.1 s pause, a 0.5 s one, a 40 ms click
        x[int(a * SR):int(b * SR)] = tone[int(a * SR):int(b * SR)]
    x += 1e-5 * np.random.default_rng(0).standard_normal(len(x))  # a noise floor 90 dB down
    act = speech_activity(x)
    assert len(act) == 200
    edges = np.flatnonzero(np.diff(np.concatenate([[0], act.astype(int), [0]]))) * 0.02
    assert edges.tolist() == pytest.approx([0.5, 1.5, 2.0, 2.5])


def test_data_dirs(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert prepare_data.main(["librimix", "--root", str(corpus), "--data", str(data)]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["dev", "test", "train_100"]
    for split in SPLITS:
        d = data / split.replace("-", "_")
        assert datadir.validate(d, check_audio=True, channels=1) == []
        gains = {g["mixture_ID"]: g for g in rows(max_dir(corpus) / "metadata" / f"mixture_{split}_gains.csv")}
        wav = datadir.read_table(d / "wav.scp").rows
        assert set(wav) == set(gains)
        assert datadir.read_table(d / "utt2spk").rows == {m: m for m in gains}
        reco2dur = {k: float(v) for k, v in datadir.read_table(d / "reco2dur").rows.items()}
        rttm = read_rttm(d / "rttm")
        assert set(rttm) == set(gains)
        for m, g in gains.items():
            assert wav[m] == str(max_dir(corpus) / split / "mix_both" / f"{m}.wav")
            assert reco2dur[m] == sf.info(wav[m]).frames / SR
            # speakers: the LibriSpeech speaker directories of the two source files
            spks = {Path(g["source_1_path"]).parent.parent.name, Path(g["source_2_path"]).parent.parent.name}
            assert {t[0] for t in rttm[m]} == spks and len(spks) == 2
            assert all(0 <= s < e <= reco2dur[m] for _, s, e in rttm[m])


def test_overlap_ratio_recorded_is_that_of_the_sources_and_of_the_rttm(corpus: Path, tmp_path: Path) -> None:
    (d,) = prepare_librimix(corpus, tmp_path, ["dev"])
    rttm = read_rttm(d / "rttm")
    for g in rows(max_dir(corpus) / "metadata" / "mixture_dev_gains.csv"):
        m = g["mixture_ID"]
        acts = [speech_activity(read(max_dir(corpus) / "dev" / s / f"{m}.wav")) for s in ("s1", "s2")]
        assert float(g["overlap_ratio"]) == overlap_ratio(acts)
        ann = Annotation()
        for k, (spk, s, e) in enumerate(rttm[m]):
            ann[Segment(s, e), k] = spk
        speech = ann.get_timeline().support().duration()
        assert ann.get_overlap().duration() / speech == pytest.approx(float(g["overlap_ratio"]), abs=1e-6)


def _copy_as_old_librimix(corpus: Path, dst: Path) -> Path:
    """Libri2Mix copied elsewhere, its csvs naming the files under a path that does not exist (the machine that
    made it), in the 6-column header of older LibriMix."""
    shutil.copytree(corpus / "Libri2Mix", dst / "Libri2Mix")
    for p in (dst / "Libri2Mix" / "wav16k" / "max" / "metadata").glob("mixture_*_mix_*.csv"):
        text = p.read_text().replace(str(corpus), "/gone/storage")
        out = []
        for line in text.splitlines():
            f = line.split(",")
            out.append(",".join(f[:1] + f[2:]))
        p.write_text("\n".join(out) + "\n")
    return dst


def test_old_header_and_moved_corpus(corpus: Path, tmp_path: Path) -> None:
    moved = _copy_as_old_librimix(corpus, tmp_path / "moved")
    csv_path = max_dir(moved) / "metadata" / "mixture_dev_mix_both.csv"
    assert csv_path.read_text().splitlines()[0] == HEADER_6
    assert "/gone/storage/Libri2Mix/" in csv_path.read_text()
    (new,) = prepare_librimix(moved, tmp_path / "new", ["dev"])
    (ref,) = prepare_librimix(corpus, tmp_path / "ref", ["dev"])
    assert (new / "rttm").read_text() == (ref / "rttm").read_text()
    assert (new / "wav.scp").read_text() == (ref / "wav.scp").read_text().replace(str(corpus), str(moved))
    # --mix mix_clean reads its own csv and files
    assert prepare_data.main(["librimix", "--root", str(max_dir(moved)), "--data", str(tmp_path / "c"),
                              "--subsets", "dev", "--mix", "mix_clean"]) == 0
    wav = (tmp_path / "c" / "dev_mix_clean" / "wav.scp").read_text()
    assert wav.count("/mix_clean/") == SPLITS["dev"] and str(moved) in wav
    assert (tmp_path / "c" / "dev_mix_clean" / "rttm").read_text() == (ref / "rttm").read_text()


def test_errors_name_the_csv_line(corpus: Path, tmp_path: Path) -> None:
    moved = _copy_as_old_librimix(corpus, tmp_path / "moved")
    meta = max_dir(moved) / "metadata"
    second = rows(meta / "mixture_dev_mix_both.csv")[1]["mixture_ID"]
    (max_dir(moved) / "dev" / "s2" / f"{second}.wav").unlink()
    with pytest.raises(CorpusError, match=rf"mixture_dev_mix_both\.csv:3: s2 file .*{second}\.wav is missing"):
        prepare_librimix(moved, tmp_path / "d", ["dev"])
    lines = (meta / "mixture_test_mix_both.csv").read_text().splitlines()
    (meta / "mixture_test_mix_both.csv").write_text("\n".join([lines[0] + ",source_3_path"] + lines[1:]) + "\n")
    with pytest.raises(CorpusError, match=r"mixture_test_mix_both\.csv:1: unknown header"):
        prepare_librimix(moved, tmp_path / "d", ["test"])
    with pytest.raises(CorpusError, match="no mixture_<split>_mix_both.csv for .'train-360'"):
        prepare_librimix(moved, tmp_path / "d", ["train-360"])


def test_recording_shorter_than_a_frame(tmp_path: Path) -> None:
    top = tmp_path / "Libri2Mix" / "wav16k" / "max"
    mid = "1-2-0003_4-5-0006"
    for sub in ("mix_both", "s1", "s2", "noise"):
        (top / "dev" / sub).mkdir(parents=True)
        sf.write(top / "dev" / sub / f"{mid}.wav", np.zeros(100), SR, subtype="PCM_16")
    (top / "metadata").mkdir()
    paths = [str(top / "dev" / s / f"{mid}.wav") for s in ("mix_both", "s1", "s2", "noise")]
    (top / "metadata" / "mixture_dev_mix_both.csv").write_text(f"{HEADER_6}\n{mid},{','.join(paths)},100\n")
    with pytest.raises(CorpusError, match=rf"mixture_dev_mix_both\.csv:2: mixture {mid} has 100 samples, "
                                          r"shorter than one 320 sample \(20 ms\) frame"):
        prepare_librimix(tmp_path, tmp_path / "data")


def test_source_rttm_turns(corpus: Path, tmp_path: Path) -> None:
    gains = rows(max_dir(corpus) / "metadata" / "mixture_dev_gains.csv")
    utts = {Path(g[f"source_{k}_path"]).stem for g in gains for k in (1, 2)}
    # SUPERB's per-utterance RTTMs name an utterance <chapter>-<nnnn>, the speaker in the speaker field
    lines = [f"SPEAKER {u.split('-', 1)[1]} 1 {s} {d} <NA> <NA> {u.split('-')[0]} <NA> <NA>"
             for u in sorted(utts) for s, d in ((0.05, 0.45), (0.7, 0.3))]
    src = tmp_path / "dev_clean.rttm"
    src.write_text("\n".join(lines) + "\n")
    assert prepare_data.main(["librimix", "--root", str(corpus), "--data", str(tmp_path / "d"), "--subsets", "dev",
                              "--source_rttm", str(src)]) == 0
    rttm = read_rttm(tmp_path / "d" / "dev" / "rttm")
    for g in gains:
        spks = [Path(g[f"source_{k}_path"]).parent.parent.name for k in (1, 2)]
        got = sorted((spk, round(s, 3), round(e, 3)) for spk, s, e in rttm[g["mixture_ID"]])
        assert got == sorted((spk, s, round(s + d, 3)) for spk in spks for s, d in ((0.05, 0.45), (0.7, 0.3)))
    first = gains[0]["mixture_ID"].split("_")[0]
    src.write_text("\n".join(x for x in lines if f" {first.split('-', 1)[1]} " not in x) + "\n")
    with pytest.raises(CorpusError, match=rf"mixture_dev_mix_both\.csv:2: utterance {first} .* is in none of"):
        prepare_librimix(corpus, tmp_path / "e", ["dev"], source_rttm=src)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes().replace(str(root).encode(), b"ROOT")
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_simulator_deterministic_for_any_nj_and_resumable(corpus: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ls, musan = corpus / "LibriSpeech", corpus / "musan"
    opts = ["--split", "dev", "--num_mixtures", "5", "--seed", "3", "--max_offset", "1.5", "--csv_columns", "6"]
    assert simulate_librimix.main(["--librispeech", str(ls), "--musan", str(musan), "--out", str(tmp_path / "a"),
                                   "--nj", "2", *opts]) == 0
    a = _files(tmp_path / "a")
    assert len([k for k in a if k.endswith(".wav")]) == 5 * 5
    assert a["Libri2Mix/wav16k/max/metadata/mixture_dev_mix_both.csv"].decode().splitlines()[0] == HEADER_6
    gains = rows(max_dir(tmp_path / "a") / "metadata" / "mixture_dev_gains.csv")
    assert any(float(g["source_2_offset"]) > 0.1 for g in gains)
    for g in gains:  # the second source starts after its delay
        start = int(round(float(g["source_2_offset"]) * SR))
        assert not np.any(read(max_dir(tmp_path / "a") / "dev" / "s2" / f"{g['mixture_ID']}.wav")[:start])
    # the same from data dirs of the same LibriSpeech utterances and MUSAN noises
    data = tmp_path / "data"
    librispeech.prepare(ls, data, ["dev-clean"])
    musan_corpus.prepare_musan(musan, data, ["noise"])
    sim.simulate_librimix(data / "dev_clean", data / "musan_noise", tmp_path / "c", "dev", 5, seed=3,
                          max_offset=1.5, csv_columns=6)
    assert _files(tmp_path / "c") == a
    # the same from one process, after an interruption: a rerun does only what is left
    real, calls, killed = sim.simulate_mixture, [], []

    def flaky(*args, **kw):  # noqa: ANN002, ANN003
        calls.append(args[:2])
        if len(calls) == 3 and not killed:  # the third mixture of the first run dies
            killed.append(args[:2])
            raise RuntimeError("killed")
        return real(*args, **kw)

    monkeypatch.setattr(sim, "simulate_mixture", flaky)
    b = tmp_path / "b"
    with pytest.raises(RuntimeError, match="killed"):
        sim.simulate_librimix(ls, musan, b, "dev", 5, seed=3, nj=1, max_offset=1.5, csv_columns=6)
    calls.clear()
    sim.simulate_librimix(ls, musan, b, "dev", 5, seed=3, nj=1, max_offset=1.5, csv_columns=6)
    assert len(calls) == 3
    assert _files(b) == a
    calls.clear()
    sim.simulate_librimix(ls, musan, b, "dev", 5, seed=3, nj=1, max_offset=1.5, csv_columns=6)
    assert calls == []  # complete: skipped
    with pytest.raises(sim.LibriMixSimError, match="other parameters"):
        sim.simulate_librimix(ls, musan, b, "dev", 5, seed=4, nj=1, max_offset=1.5, csv_columns=6)
    monkeypatch.setattr(sim, "simulate_mixture", real)
    sim.simulate_librimix(ls, musan, b, "dev", 5, seed=4, nj=1, max_offset=1.5, csv_columns=6, overwrite=True)
    other = _files(b)
    assert other.keys() != a.keys() or any(other[k] != a[k] for k in a if k.endswith(".wav"))
