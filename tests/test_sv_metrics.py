"""Speaker-verification scoring: hand-computed EER/minDCF, a brute-force threshold sweep and scikit-learn's ROC
(interpolated with brentq) as independent references on random scores, AS-norm by hand and on a constructed
"hub", and the score_sv CLI end to end on a tiny kaldiio ark/scp (scores, result.json, det.png, RESULTS.md)."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from wavlm.bin import score_sv
from wavlm.metrics.sv import (
    SvError,
    Trials,
    as_norm,
    cosine_scores,
    eer,
    error_rates,
    min_dcf,
    read_trials,
    speaker_means,
)

# ---- hand-computed cases ----------------------------------------------------------------------------------


def test_eer_hand_computed_horizontal_segment():
    # targets 0.9 0.8 0.3, non-targets 0.7 0.6 0.2 0.1; accept when score >= t:
    #   t     0.1  0.2  0.3  0.6  0.7  0.8  0.9  (above all)
    #   P_fa  4/4  3/4  2/4  2/4  1/4   0    0    0
    #   P_miss 0    0    0   1/3  1/3  1/3  2/3   1
    # P_fa - P_miss turns <= 0 first at t=0.7: from (P_fa, P_miss) = (1/2, 1/3) to (1/4, 1/3), difference
    # 1/6 -> -1/12, so a = (1/6) / (1/6 + 1/12) = 2/3 of the way: EER = 1/3, threshold 0.6 + 2/3 * 0.1.
    s = [0.9, 0.8, 0.3, 0.7, 0.6, 0.2, 0.1]
    lab = [1, 1, 1, 0, 0, 0, 0]
    e, thr = eer(s, lab)
    assert e == pytest.approx(100 / 3)
    assert thr == pytest.approx(0.6 + 0.2 / 3)
    thr_all, p_miss, p_fa = error_rates(s, lab)
    np.testing.assert_allclose(thr_all[:-1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9])
    assert thr_all[-1] > 0.9
    np.testing.assert_allclose(p_fa, [1, 3 / 4, 1 / 2, 1 / 2, 1 / 4, 0, 0, 0])
    np.testing.assert_allclose(p_miss, [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])


def test_eer_hand_computed_tie_is_interpolated():
    # targets 0.5 0.9, non-targets 0.1 0.5 (a tie at 0.5):
    #   t      0.1  0.5  0.9  (above all)
    #   P_fa    1   1/2   0    0
    #   P_miss  0    0   1/2   1
    # crossing between t=0.5 (1/2, 0) and t=0.9 (0, 1/2), half way: EER = 1/4, threshold 0.7.
    e, thr = eer(np.array([0.5, 0.9, 0.1, 0.5]), np.array([True, True, False, False]))
    assert e == pytest.approx(25.0)
    assert thr == pytest.approx(0.7)


def test_eer_hand_computed_vertical_segment():
    # targets 0.4 0.6, non-target 0.5:  t 0.4: (P_fa 1, P_miss 0); 0.5: (1, 1/2); 0.6: (0, 1/2).
    # crossing on the segment 0.5 -> 0.6 (P_miss stays 1/2), half way: EER = 50%, threshold 0.55.
    e, thr = eer([0.4, 0.6, 0.5], [1, 1, 0])
    assert e == pytest.approx(50.0)
    assert thr == pytest.approx(0.55)


def test_min_dcf_hand_computed():
    # targets 0.9 0.5 0.4, non-targets 0.8 0.3 0.2 0.1:
    #   t      0.1  0.2  0.3  0.4  0.5  0.8  0.9  (above all)
    #   P_miss  0    0    0    0   1/3  2/3  2/3   1
    #   P_fa    1   3/4  1/2  1/4  1/4  1/4   0    0
    s = [0.9, 0.5, 0.4, 0.8, 0.3, 0.2, 0.1]
    lab = [1, 1, 1, 0, 0, 0, 0]
    # p_target 0.5: C_def = 0.5, normalised DCF = P_miss + P_fa: 1 .75 .5 .25 .58 .92 .67 1 -> 0.25 at t=0.4
    assert min_dcf(s, lab, 0.5) == pytest.approx((0.25, 0.4))
    # p_target 0.01: C_def = 0.01, DCF = P_miss + 99 P_fa: any false alarm costs >= 24.75 -> 2/3 at t=0.9
    assert min_dcf(s, lab, 0.01) == pytest.approx((2 / 3, 0.9))
    # p_target 0.05: P_miss + 19 P_fa -> 2/3 at t=0.9 (t=0.4 costs 4.75)
    assert min_dcf(s, lab, 0.05) == pytest.approx((2 / 3, 0.9))
    # p_target 0.01, C_miss 100: C_def = min(1, 0.99) = 0.99, DCF/0.99 = P_miss/0.99 + P_fa -> 0.25 at t=0.4
    assert min_dcf(s, lab, 0.01, c_miss=100) == pytest.approx((0.25, 0.4))
    # p_target 0.99: C_def = 0.01, DCF = 99 P_miss + P_fa -> 0.25 at t=0.4
    assert min_dcf(s, lab, 0.99) == pytest.approx((0.25, 0.4))
    # EER of the same: first P_fa <= P_miss at t=0.5, from (1/4, 0) to (1/4, 1/3): a = 3/4, EER 25%
    assert eer(s, lab) == pytest.approx((25.0, 0.475))


def test_separated_and_identical_distributions():
    rng = np.random.default_rng(0)
    tar, non = rng.normal(3, 0.5, 300), rng.normal(-3, 0.5, 3000)
    tar = np.maximum(tar, non.max() + 1e-3)
    s, lab = np.concatenate([tar, non]), np.r_[np.ones(300, bool), np.zeros(3000, bool)]
    e, thr = eer(s, lab)
    assert e == 0.0
    assert non.max() < thr <= tar.min()
    assert min_dcf(s, lab, 0.01)[0] == 0.0
    # a system whose scores say nothing: EER about 50%, minDCF about 1 (close to always rejecting)
    s = rng.normal(0, 1, 20000)
    lab = rng.random(20000) < 0.5
    assert eer(s, lab)[0] == pytest.approx(50.0, abs=2.0)
    assert 0.9 < min_dcf(s, lab, 0.01)[0] <= 1.0
    # reversed scores: everything on the wrong side
    assert eer(-np.r_[tar, non[:300]], np.r_[np.ones(300, bool), np.zeros(300, bool)])[0] == 100.0


def test_bad_inputs():
    with pytest.raises(SvError, match="target and non-target"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(SvError, match="not finite"):
        eer([0.1, np.nan], [1, 0])
    with pytest.raises(SvError, match="equal length"):
        min_dcf([0.1, 0.2, 0.3], [1, 0], 0.01)
    with pytest.raises(SvError, match="p_target"):
        min_dcf([0.1, 0.2], [1, 0], 1.0)


# ---- independent references on random scores ----------------------------------------------------------------


def sweep(scores: np.ndarray, labels: np.ndarray, p_target: float) -> float:
    """Brute force normalised minDCF: every threshold (each score and +inf), P_miss/P_fa by counting."""
    tar = [float(x) for x, y in zip(scores, labels, strict=True) if y]
    non = [float(x) for x, y in zip(scores, labels, strict=True) if not y]
    best = float("inf")
    for t in sorted(set(scores.tolist())) + [float("inf")]:
        p_miss = sum(x < t for x in tar) / len(tar)
        p_fa = sum(x >= t for x in non) / len(non)
        best = min(best, p_target * p_miss + (1 - p_target) * p_fa)
    return best / min(p_target, 1 - p_target)


def rates_at(scores: np.ndarray, labels: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(scores[labels] < t)), float(np.mean(scores[~labels] >= t))


def sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """The common recipe: sklearn's ROC, tpr interpolated along fpr, root of 1 - fpr - tpr by brentq."""
    from scipy.optimize import brentq
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return 100.0 * brentq(lambda x: 1.0 - x - np.interp(x, fpr, tpr), 0.0, 1.0, xtol=1e-14, rtol=1e-14)


@pytest.mark.parametrize("seed", range(40))
def test_against_sweep_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_tar, n_non = int(rng.integers(1, 60)), int(rng.integers(1, 200))
    s = np.concatenate([rng.normal(rng.uniform(0, 3), 1, n_tar), rng.normal(0, rng.uniform(0.5, 2), n_non)])
    if seed % 2:
        s = np.round(s, 1)  # many ties, also between targets and non-targets
    lab = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    perm = rng.permutation(len(s))
    s, lab = s[perm], lab[perm]

    e, thr = eer(s, lab)
    assert e == pytest.approx(sklearn_eer(s, lab), abs=1e-9)
    # at the EER threshold the counted rates bracket the EER (the crossing lies on the segment ending there)
    p_miss, p_fa = rates_at(s, lab, thr)
    assert p_fa - 1e-12 <= e / 100 <= p_miss + 1e-12

    for p in (0.01, 0.05, 0.5):
        d, d_thr = min_dcf(s, lab, p)
        assert d == pytest.approx(sweep(s, lab, p), abs=1e-12)
        p_miss, p_fa = rates_at(s, lab, d_thr)
        assert d == pytest.approx((p * p_miss + (1 - p) * p_fa) / min(p, 1 - p), abs=1e-12)


# ---- trials, cosine scoring, AS-norm ----------------------------------------------------------------------


def test_read_trials_and_errors(tmp_path):
    f = tmp_path / "vox1_O"
    f.write_text("a b target\na c nontarget\n")
    tr = read_trials(f)
    assert (tr.enroll, tr.test, tr.labels.tolist(), tr.name) == (["a", "a"], ["b", "c"], [True, False], "vox1_O")
    f.write_text("a b target\na c nontarget\nb c 1\n")
    with pytest.raises(SvError, match=rf"{f}:3: label must be"):
        read_trials(f)
    f.write_text("a b target\n1 a c\n")
    with pytest.raises(SvError, match=rf"{f}:2: label must be"):
        read_trials(f)
    f.write_text("a b target\na b\n")
    with pytest.raises(SvError, match=rf"{f}:2: expected"):
        read_trials(f)
    f.write_text("a b target\nc d target\na b nontarget\n")
    with pytest.raises(SvError, match=rf"{f}:3: trial a b repeats line 1 with the other label"):
        read_trials(f)
    f.write_text("a b target\nc d nontarget\na b target\n")
    assert read_trials(f).labels.tolist() == [True, False, True]


def test_cosine_scores_and_missing_utterance(tmp_path):
    emb = {"a": np.array([3.0, 4.0]), "b": np.array([1.0, 0.0]), "c": np.array([0.0, -2.0])}
    f = tmp_path / "trials"
    f.write_text("a b target\na c nontarget\nb c nontarget\n")
    # cos(a, b) = 3/5, cos(a, c) = -8/10, cos(b, c) = 0
    np.testing.assert_allclose(cosine_scores(emb, read_trials(f)), [0.6, -0.8, 0.0], atol=1e-12)
    f.write_text("a b target\na c nontarget\nb zz nontarget\n")
    with pytest.raises(SvError, match=rf"{f}:3: no embedding for utterance zz"):
        cosine_scores(emb, read_trials(f))


def test_speaker_means():
    emb = {"s1-a": np.array([2.0, 0.0]), "s1-b": np.array([0.0, 5.0]), "s2-a": np.array([0.0, -1.0])}
    spks, m = speaker_means(emb, {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2", "s3-a": "s3"})
    assert spks == ["s1", "s2"]  # s3 has no embedding: skipped
    np.testing.assert_allclose(m, [[0.5, 0.5], [0.0, -1.0]])  # means of length-normalised vectors
    with pytest.raises(SvError, match="no speaker"):
        speaker_means(emb, {"s1-a": "s1"})


def test_as_norm_hand_computed():
    # cohort rows (normalised) [1,0], [0,1], [-1,0]; top_n = 2.
    # enroll e = [1,0]: cohort scores 1, 0, -1 -> top 2 {1, 0}: mu 0.5, sd 0.5
    # test t = [3,4] -> [0.6,0.8]: cohort scores 0.6, 0.8, -0.6 -> top 2 {0.8, 0.6}: mu 0.7, sd 0.1
    # raw s = 0.6; s' = ((0.6 - 0.5) / 0.5 + (0.6 - 0.7) / 0.1) / 2 = (0.2 - 1) / 2 = -0.4 (symmetric in e, t)
    emb = {"e": np.array([1.0, 0.0]), "t": np.array([3.0, 4.0])}
    cohort = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    out = as_norm(np.array([0.6, 0.6]), ["e", "t"], ["t", "e"], emb, cohort, 2)
    np.testing.assert_allclose(out, [-0.4, -0.4], atol=1e-12)
    # top_n 3 (whole cohort): e: mu 0, sd sqrt(2/3); t: mu 0.8/3, sd sqrt(0.36*2/3 + 0.64/3 - (0.8/3)^2)
    sd_t = np.sqrt((0.36 + 0.64 + 0.36) / 3 - (0.8 / 3) ** 2)
    want = 0.5 * (0.6 / np.sqrt(2 / 3) + (0.6 - 0.8 / 3) / sd_t)
    np.testing.assert_allclose(as_norm(np.array([0.6]), ["e"], ["t"], emb, cohort, 3), [want])
    # top_n above the cohort size uses the whole cohort
    np.testing.assert_allclose(as_norm(np.array([0.6]), ["e"], ["t"], emb, cohort, 10), [want])
    with pytest.raises(SvError, match="no embedding for utterance x"):
        as_norm(np.array([0.6]), ["e"], ["x"], emb, cohort, 2)


def population(rng: np.random.Generator, prefix: str, n_spk: int, n_utt: int, center: np.ndarray,
               spk_sd: float = 0.3, utt_sd: float = 0.8) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    d = len(center)
    emb, u2s = {}, {}
    for s in range(n_spk):
        v = center + spk_sd * rng.standard_normal(d) / np.sqrt(d)
        for u in range(n_utt):
            emb[f"{prefix}{s:03d}-{u:02d}"] = v + utt_sd * rng.standard_normal(d) / np.sqrt(d)
            u2s[f"{prefix}{s:03d}-{u:02d}"] = f"{prefix}{s:03d}"
    return emb, u2s


@pytest.mark.parametrize("seed", range(5))
def test_as_norm_pulls_down_a_hub(seed):
    # Embeddings share a common direction; the training speakers' means cluster tightly around it. A "hub"
    # test embedding sits at that center: its raw cosine with every enrollment is high. Against the cohort
    # its top scores are very high and tightly spread, so AS-norm (its test side) pulls its scores far down,
    # below a normal test embedding's. Normalising only the enroll side would keep the hub on top.
    rng = np.random.default_rng(seed)
    center = np.zeros(32)
    center[0] = 1.0
    coh_emb, u2s = population(rng, "c", 100, 20, center)
    _, cohort = speaker_means(coh_emb, u2s)
    enroll, _ = population(rng, "e", 20, 1, center)
    tests, _ = population(rng, "t", 20, 1, center)
    emb = {**enroll, **tests, "hub": center.copy()}
    e_ids = [e for e in enroll for _ in [*tests, "hub"]]
    t_ids = [t for _ in enroll for t in [*tests, "hub"]]
    tr = Trials(Path("trials"), e_ids, t_ids, np.zeros(len(e_ids), bool), list(range(1, len(e_ids) + 1)))
    raw = cosine_scores(emb, tr)
    norm = as_norm(raw, e_ids, t_ids, emb, cohort, 50)
    hub = np.array(t_ids) == "hub"
    assert raw[hub].mean() > raw[~hub].mean() + 0.1
    assert norm[hub].mean() < norm[~hub].mean() - 2.0
    # per enrollment (rows): the fraction of normal test embeddings that the hub outscores
    raw, norm = raw.reshape(len(enroll), -1), norm.reshape(len(enroll), -1)
    assert (raw[:, -1:] > raw[:, :-1]).mean() > 0.9
    assert (norm[:, -1:] > norm[:, :-1]).mean() < 0.35


# ---- the CLI end to end -------------------------------------------------------------------------------------


def write_scp(d: Path, emb: dict[str, np.ndarray]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'emb.ark'},{d / 'emb.scp'}") as w:
        for u in sorted(emb):
            w(u, emb[u].astype(np.float32))
    return d / "emb.scp"


def loop_as_norm(e: np.ndarray, t: np.ndarray, cohort: list[np.ndarray], top_n: int) -> float:
    """Independent AS-norm of one trial with plain Python (statistics.pstdev)."""
    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    s = cos(e, t)
    z = 0.0
    for x in (e, t):
        top = sorted(cos(x, c) for c in cohort)[-top_n:]
        z += (s - statistics.fmean(top)) / statistics.pstdev(top)
    return z / 2


def test_cli_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(7)
    test_emb, test_u2s = population(rng, "id1", 4, 3, np.zeros(16), spk_sd=1.0, utt_sd=0.8)
    train_emb, train_u2s = population(rng, "id0", 6, 3, np.zeros(16), spk_sd=1.0, utt_sd=0.5)
    test_emb = {u: v.astype(np.float32).astype(np.float64) for u, v in test_emb.items()}
    train_emb = {u: v.astype(np.float32).astype(np.float64) for u, v in train_emb.items()}
    scp = write_scp(tmp_path / "emb" / "test", test_emb)
    train_scp = write_scp(tmp_path / "emb" / "train", train_emb)
    (tmp_path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(train_u2s.items())))
    utts = sorted(test_emb)
    pairs = [(a, b) for i, a in enumerate(utts) for b in utts[i + 1 :]]
    trials = tmp_path / "vox1_O"
    trials.write_text("".join(f"{a} {b} {'target' if test_u2s[a] == test_u2s[b] else 'nontarget'}\n"
                              for a, b in pairs))
    lab = np.array([test_u2s[a] == test_u2s[b] for a, b in pairs])
    raw = np.array([test_emb[a] @ test_emb[b] / np.linalg.norm(test_emb[a]) / np.linalg.norm(test_emb[b])
                    for a, b in pairs])

    out = tmp_path / "score_vox1_O"
    assert score_sv.main(["--emb", str(scp), "--trials", str(trials), "--out", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert (res["norm"], res["list"], res["n_target"], res["n_nontarget"]) == ("none", "vox1_O", 12, 54)
    assert res["eer"] == pytest.approx(sklearn_eer(raw, lab), abs=1e-4)
    assert res["mindcf_0.01"] == pytest.approx(sweep(raw, lab, 0.01), abs=1e-5)
    assert res["mindcf_0.05"] == pytest.approx(sweep(raw, lab, 0.05), abs=1e-5)
    lines = (out / "scores").read_text().splitlines()
    assert [tuple(x.split()[:2]) for x in lines] == pairs
    np.testing.assert_allclose([float(x.split()[2]) for x in lines], raw, atol=1e-5)
    assert (out / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out.strip()
    assert printed == (f"EER {res['eer']:.2f}% minDCF(0.01) {res['mindcf_0.01']:.3f} "
                       f"minDCF(0.05) {res['mindcf_0.05']:.3f} (vox1_O, none)")

    out_n = tmp_path / "score_vox1_O_asnorm"
    assert score_sv.main(["--emb", str(scp), "--trials", str(trials), "--out", str(out_n),
                          "--cohort_emb", str(train_scp), "--utt2spk", str(tmp_path / "utt2spk"),
                          "--top_n", "4"]) == 0
    res_n = json.loads((out_n / "result.json").read_text())
    assert (res_n["norm"], res_n["n_cohort"], res_n["top_n"]) == ("asnorm", 6, 4)
    assert capsys.readouterr().out.strip().endswith("(vox1_O, asnorm)")
    by_spk: dict[str, list[np.ndarray]] = {}
    for u, s in train_u2s.items():
        by_spk.setdefault(s, []).append(train_emb[u] / np.linalg.norm(train_emb[u]))
    cohort = [np.mean(v, axis=0) for v in by_spk.values()]
    want = np.array([loop_as_norm(test_emb[a], test_emb[b], cohort, 4) for a, b in pairs])
    got = np.array([float(x.split()[2]) for x in (out_n / "scores").read_text().splitlines()])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert res_n["eer"] == pytest.approx(sklearn_eer(want, lab), abs=1e-3)

    md = tmp_path / "RESULTS.md"
    assert score_sv.main(["--summarize", str(out), str(out_n / "result.json"), "--out", str(md)]) == 0
    rows = [x for x in md.read_text().splitlines() if x.startswith("| vox1_O")]
    assert rows == [f"| vox1_O | none | 66 | {res['eer']:.2f} | {res['mindcf_0.01']:.4f} | {res['mindcf_0.05']:.4f} |",
                    f"| vox1_O | asnorm | 66 | {res_n['eer']:.2f} | {res_n['mindcf_0.01']:.4f} | "
                    f"{res_n['mindcf_0.05']:.4f} |"]


def test_cli_missing_utterance_names_trial_line(tmp_path, capsys):
    scp = write_scp(tmp_path / "emb", {"a": np.ones(4), "b": np.arange(4.0), "c": -np.arange(4.0)})
    trials = tmp_path / "vox1_O"
    trials.write_text("a b target\na c nontarget\nb nope nontarget\n")
    out = tmp_path / "score"
    assert score_sv.main(["--emb", str(scp), "--trials", str(trials), "--out", str(out)]) == 1
    assert f"{trials}:3: no embedding for utterance nope" in capsys.readouterr().err
    assert not (out / "result.json").exists()


def test_cli_help_runs_as_module(root):
    p = subprocess.run([sys.executable, "-m", "wavlm.bin.score_sv", "--help"], cwd=root, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "--cohort_emb" in p.stdout and "minDCF" in p.stdout
