"""k-means fitting/applying, label files and label quality (PNMI, purities) against hand-computed values."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from wavlm.bin import dump_km_label, label_quality, learn_kmeans
from wavlm.cluster.kmeans import KMeansError, KMeansModel, choose_utts, fit_kmeans, inertia, sample_frames
from wavlm.cluster.labels import LabelError, check_num_frames, read_labels, verify_label_length, write_labels
from wavlm.cluster.quality import contingency, pair_frames, quality_from_counts
from wavlm.cluster.quality import label_quality as score
from wavlm.features.shards import ShardError, ark_scp_writer, write_feature_info

CENTERS = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]], dtype=np.float32)


def blobs(n: int, seed: int, dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CENTERS), n)
    c = np.zeros((len(CENTERS), dim), dtype=np.float32)
    c[:, :4] = CENTERS
    return (c[y] + rng.standard_normal((n, dim)).astype(np.float32)), y


# ---- quality: hand-computed values --------------------------------------------------------------------


def test_pnmi_2x2_by_hand():
    # ref (rows) x clusters (cols) counts [[3, 1], [1, 3]]: p = [[3/8, 1/8], [1/8, 3/8]], marginals 1/2
    q = quality_from_counts(np.array([[3, 1], [1, 3]]))
    mi = 2 * (3 / 8) * math.log((3 / 8) / (1 / 4)) + 2 * (1 / 8) * math.log((1 / 8) / (1 / 4))
    assert q.mutual_info == pytest.approx(mi) and q.h_ref == pytest.approx(math.log(2))
    assert q.pnmi == pytest.approx(mi / math.log(2)) and q.pnmi == pytest.approx(0.18872, abs=1e-5)
    assert q.phone_purity == pytest.approx(0.75) and q.cluster_purity == pytest.approx(0.75)


def test_purity_directions():
    # phone a -> cluster 0 only; phone b split over clusters 1 and 2: clusters determine phones (PNMI 1,
    # phone purity 1) but phone b's frames are split (cluster purity (4 + 2) / 8)
    ref = ["a"] * 4 + ["b"] * 4
    hyp = [0, 0, 0, 0, 1, 1, 2, 2]
    q = score({"u": hyp}, {"u": ref})
    assert q.pnmi == pytest.approx(1.0) and q.phone_purity == pytest.approx(1.0)
    assert q.cluster_purity == pytest.approx(0.75)
    # one cluster for everything explains none of the phone entropy
    q2 = score({"u": [0] * 8}, {"u": ref})
    assert q2.pnmi == pytest.approx(0.0) and q2.phone_purity == pytest.approx(0.5)


def test_pnmi_perfect_and_independent():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 40, 50000)
    perm = rng.permutation(40) + 7  # cluster ids are any relabelling of the phones
    assert score({"u": perm[ref]}, {"u": ref}).pnmi == pytest.approx(1.0)
    q = score({"u": rng.integers(0, 50, 50000)}, {"u": ref})
    assert q.pnmi < 0.01 and q.phone_purity < 0.06
    counts = contingency(np.array([0, 1, 1]), np.array([2, 0, 2]))
    np.testing.assert_array_equal(counts, [[0, 0, 1], [1, 0, 1]])


def test_length_mismatch_trim_and_error():
    hyp = {"u1": [0, 1, 1, 2], "u2": [3, 3, 3]}
    ref = {"u1": ["a", "b", "b", "c", "c", "c"], "u2": ["x", "x", "x"]}  # u1 differs by 2
    hs, rs, n = pair_frames(hyp, ref, tol=2)
    assert n == 2 and len(hs) == len(rs) == 7
    with pytest.raises(LabelError, match=r"utterance u1 has 4 labels but 6 reference labels"):
        pair_frames(hyp, ref, tol=1)
    with pytest.raises(LabelError, match=r"no utterance"):
        pair_frames({"z": [1]}, ref)


def test_label_feature_length_checks(tmp_path):
    labels = {"a": np.zeros(10, int), "b": np.zeros(7, int)}
    check_num_frames(labels, {"a": 10, "b": 7})
    with pytest.raises(LabelError, match=r"utterance b has 7 labels but 8 feature frames"):
        check_num_frames(labels, {"a": 10, "b": 8})
    with pytest.raises(LabelError, match=r"utterance b has labels but no features"):
        check_num_frames(labels, {"a": 10})
    verify_label_length("a", 50, 16000, 50.0)  # 1 s of audio, 1 s of labels
    with pytest.raises(LabelError, match=r"utterance a: 100 labels at 50/s"):
        verify_label_length("a", 100, 16000, 50.0)
    write_labels(tmp_path / "l.txt", {"b": [1, 2], "a": [3]})
    assert (tmp_path / "l.txt").read_text() == "a 3\nb 1 2\n"
    (tmp_path / "bad.txt").write_text("a 1 2\na 3\n")
    with pytest.raises(LabelError, match=r"bad.txt:2: duplicate utterance 'a'"):
        read_labels(tmp_path / "bad.txt")


# ---- k-means ------------------------------------------------------------------------------------------


def test_kmeans_recovers_blobs(tmp_path):
    x, y = blobs(3000, 0)
    model = fit_kmeans(x, 5, niter=30, nredo=3, seed=1)
    q = score({"u": model.predict(x)}, {"u": y})
    assert q.phone_purity == pytest.approx(1.0) and q.cluster_purity == pytest.approx(1.0)
    assert q.pnmi == pytest.approx(1.0)
    d = np.linalg.norm(model.centroids[:, None, :] - CENTERS[None], axis=2).min(0)
    assert d.max() < 0.2
    assert model.meta["inertia"] == pytest.approx(inertia(x, model.centroids))
    assert model.meta["inertia"] / len(x) == pytest.approx(4.0, rel=0.1)  # unit-variance noise in 4 dims
    model.save(tmp_path / "km")
    back = KMeansModel.load(tmp_path / "km")
    np.testing.assert_array_equal(back.centroids, model.centroids)
    (tmp_path / "km" / "kmeans.json").unlink()
    with pytest.raises(KMeansError, match="not a finished k-means model"):
        KMeansModel.load(tmp_path / "km")


def test_spherical_kmeans_unit_centroids():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 2000)
    x = (10 * np.eye(5, dtype=np.float32)[y] + rng.standard_normal((2000, 5)).astype(np.float32))  # 5 directions
    m = fit_kmeans(x, 5, niter=20, nredo=2, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(m.centroids, axis=1), 1.0, atol=1e-4)
    assert score({"u": m.predict(x)}, {"u": y}).phone_purity > 0.95


def test_sampling_frames_and_utterances():
    feats = [(f"u{i}", np.full((50, 2), i, dtype=np.float32)) for i in range(40)]
    x = sample_frames(iter(feats), max_frames=300, seed=0)
    assert x.shape == (300, 2)
    np.testing.assert_array_equal(x, sample_frames(iter(feats), max_frames=300, seed=0))
    per_utt = np.bincount(x[:, 0].astype(int), minlength=40)
    assert per_utt.min() >= 1 and per_utt.max() <= 20  # ~7.5 each: uniform over all 2000 frames
    assert sample_frames(iter(feats)).shape == (2000, 2)
    utts = [f"u{i:02d}" for i in range(10)]
    some = choose_utts(utts, 0.35, seed=0)
    assert len(some) == 4 and some == sorted(some) and set(some) <= set(utts)
    with pytest.raises(KMeansError, match="dimension 3"):
        sample_frames(iter([("a", np.zeros((2, 2))), ("b", np.zeros((2, 3)))]))


# ---- CLIs on a feature dir ---------------------------------------------------------------------------


def write_feats(d, n_utts: int, frame_rate: float, dim: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    d.mkdir(parents=True)
    truth = {}
    with ark_scp_writer(d / "feats.1.ark", d / "feats.scp") as put:
        for i in range(n_utts):
            x, y = blobs(80 + 7 * i, seed + i, dim)
            put(f"utt{i:03d}", x)
            truth[f"utt{i:03d}"] = y
    (d / "utt2num_frames").write_text("".join(f"{u} {len(y)}\n" for u, y in truth.items()))
    write_feature_info(d, {"dim": dim, "frame_rate": frame_rate, "kind": "test"})
    return truth


def test_learn_and_dump_labels_cli(tmp_path):
    truth = write_feats(tmp_path / "feats", 12, 50.0)
    km, lab = tmp_path / "km", tmp_path / "lab"
    learn_kmeans.main(["--feats", str(tmp_path / "feats"), "--out", str(km), "--n_clusters", "5",
                       "--percent", "0.5", "--max_frames", "500", "--nredo", "3", "--niter", "30"])
    meta = json.loads((km / "kmeans.json").read_text())
    assert meta["dim"] == 4 and meta["n_clusters"] == 5 and meta["frame_rate"] == 50.0 and meta["num_frames"] == 500
    t = (km / "centroids.npy").stat().st_mtime_ns
    learn_kmeans.main(["--feats", str(tmp_path / "feats"), "--out", str(km), "--n_clusters", "5",
                       "--percent", "0.5", "--max_frames", "500", "--nredo", "3", "--niter", "30"])
    assert (km / "centroids.npy").stat().st_mtime_ns == t  # same inputs and options: skipped

    base = ["--feats", str(tmp_path / "feats" / "feats.scp"), "--km", str(km), "--out", str(lab), "--nj", "3"]
    dump_km_label.main([*base, "--job", "3"])
    with pytest.raises(ShardError, match="not done"):
        dump_km_label.main([*base, "--merge"])
    dump_km_label.main(base)
    before = {p.name: p.stat().st_mtime_ns for p in lab.glob("km.*.txt")}
    dump_km_label.main(base)
    assert {p.name: p.stat().st_mtime_ns for p in lab.glob("km.*.txt")} == before
    labels = read_labels(lab / "km.txt")
    assert list(labels) == sorted(truth)
    assert score(labels, truth).pnmi == pytest.approx(1.0)
    counts = [int(line.split()[1]) for line in (lab / "dict.km.txt").read_text().splitlines()]
    assert len(counts) == 5 and sum(counts) == sum(len(y) for y in truth.values())
    info = json.loads((lab / "labels_info.json").read_text())
    assert info["label_rate"] == 50.0 and info["n_clusters"] == 5

    ref = tmp_path / "ref.txt"  # reference at twice the label rate, one frame short for one utterance
    ref.write_text("".join(f"{u} {' '.join(f'p{v}' for v in np.repeat(y, 2)[: (-1 if u == 'utt003' else None)])}\n"
                           for u, y in truth.items()))
    out = tmp_path / "q.json"
    label_quality.main(["--labels", str(lab), "--ref", str(ref), "--ref_rate", "100", "--out", str(out)])
    q = json.loads(out.read_text())
    assert q["pnmi"] == pytest.approx(1.0) and q["num_utts"] == 12

    # labels that do not match the features' frame counts are an error naming the utterance
    u2nf = tmp_path / "feats" / "utt2num_frames"
    u2nf.write_text(u2nf.read_text().replace("utt004 108", "utt004 110"))
    with pytest.raises(LabelError, match=r"utterance utt004 has 108 labels but 110 feature frames"):
        dump_km_label.main([*base, "--merge"])


def test_dump_labels_rejects_other_rate_or_dim(tmp_path):
    write_feats(tmp_path / "f50", 3, 50.0)
    write_feats(tmp_path / "f100", 3, 100.0)
    write_feats(tmp_path / "f6", 3, 50.0, dim=6)
    learn_kmeans.main(["--feats", str(tmp_path / "f50"), "--out", str(tmp_path / "km"), "--n_clusters", "3"])
    with pytest.raises(KMeansError, match=r"100 frames/s .* 50 frames/s"):
        dump_km_label.main(["--feats", str(tmp_path / "f100"), "--km", str(tmp_path / "km"), "--out",
                            str(tmp_path / "l")])
    with pytest.raises(KMeansError, match=r"dimension 6, the model .* expects 4"):
        dump_km_label.main(["--feats", str(tmp_path / "f6"), "--km", str(tmp_path / "km"), "--out",
                            str(tmp_path / "l")])
