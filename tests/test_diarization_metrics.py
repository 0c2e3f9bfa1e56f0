"""Diarization building blocks: RTTM round trip and read errors, DER on hand-computed cases (through pyannote),
posteriors -> turns (threshold, median filter, boundaries) against hand-made cases and scipy's medfilt, frame
targets, and the permutation-invariant BCE against a per-utterance, per-permutation loop written separately."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import medfilt

from wavlm.data.rttm import Turn, merge_turns, read_rttm, write_rttm
from wavlm.metrics.diarization import (
    DerResult,
    diarization_error_rate,
    format_der_table,
    frame_der_counts,
    frame_labels,
    posteriors_to_turns,
)
from wavlm.models.pit import pit_bce

# ---- RTTM ---------------------------------------------------------------------------------------------------


def test_rttm_round_trip(tmp_path: Path) -> None:
    turns = [Turn("mixB", 0.5, 1.25, "s2"), Turn("mixA", 1.1, 0.2, "s1"), Turn("mixA", 0.0, 1.1, "s1"),
             Turn("mixA", 0.3, 2.0, "s2")]
    path = tmp_path / "ref.rttm"
    write_rttm(path, turns)
    text = path.read_text()
    assert text.splitlines()[0] == "SPEAKER mixA 1 0.000 1.100 <NA> <NA> s1 <NA> <NA>"
    got = read_rttm(path)
    assert list(got) == ["mixA", "mixB"]
    assert got["mixA"] == [Turn("mixA", 0.0, 1.1, "s1"), Turn("mixA", 0.3, 2.0, "s2"), Turn("mixA", 1.1, 0.2, "s1")]
    assert got["mixB"] == [Turn("mixB", 0.5, 1.25, "s2")]
    write_rttm(tmp_path / "again.rttm", [t for ts in got.values() for t in ts])
    assert (tmp_path / "again.rttm").read_text() == text
    assert got["mixB"][0].end == 1.75


def test_rttm_reads_9_fields_comments_and_spkr_info(tmp_path: Path) -> None:
    path = tmp_path / "x.rttm"
    path.write_text(";; a comment\n\nSPKR-INFO r 1 <NA> <NA> <NA> unknown a <NA> <NA>\n"
                    "SPEAKER r 1    2.00    1.00 <NA> <NA> r_1 <NA>\n"  # EEND's make_rttm.py layout
                    "SPEAKER r 1 0.5 1 <NA> <NA> r_0 <NA> <NA>\n")
    assert read_rttm(path) == {"r": [Turn("r", 0.5, 1.0, "r_0"), Turn("r", 2.0, 1.0, "r_1")]}


def test_write_rounds_ends_so_touching_turns_stay_apart(tmp_path: Path) -> None:
    # start 0.0006 and dur 0.9996 rounded separately would give 0.001 + 1.000 = 1.001 > the next start 1.000
    path = tmp_path / "t.rttm"
    write_rttm(path, [Turn("r", 0.0006, 0.9996, "a"), Turn("r", 1.0002, 0.5, "a")])
    turns = read_rttm(path)["r"]
    assert turns[0].end == pytest.approx(turns[1].start)
    with pytest.raises(ValueError, match="shorter than 1 ms"):
        write_rttm(path, [Turn("r", 1.0, 0.0004, "a")])
    with pytest.raises(ValueError, match="whitespace"):
        write_rttm(path, [Turn("r 2", 1.0, 1.0, "a")])


@pytest.mark.parametrize("lines, message", [
    (["SPEAKER r 1 0.0 1.0 <NA> <NA> a <NA> <NA>", "SPEAKER r 1 0.0 1.0 <NA> a <NA>"],
     r"x\.rttm:2: expected 9 or 10 fields .* got 8"),
    (["SPEAKER r 1 abc 1.0 <NA> <NA> a <NA> <NA>"], r"x\.rttm:1: start 'abc' .* must be numbers"),
    (["", "SPEAKER r 1 -0.5 1.0 <NA> <NA> a <NA> <NA>"], r"x\.rttm:2: negative start -0\.5"),
    (["SPEAKER r 1 0.5 0.000 <NA> <NA> a <NA> <NA>"], r"x\.rttm:1: duration 0\.000 is not positive"),
    (["SPEAKER r 1 0.5 -1 <NA> <NA> a <NA> <NA>"], r"x\.rttm:1: duration -1 is not positive"),
    (["NON-SPEECH r 1 0.5 1 <NA> <NA> <NA> <NA> <NA>"], r"x\.rttm:1: line type 'NON-SPEECH' is not supported"),
    # overlapping turns of one speaker, out of order in the file: both lines named
    (["SPEAKER r 1 3.0 2.0 <NA> <NA> a <NA> <NA>", "SPEAKER r 1 0.0 1.0 <NA> <NA> b <NA> <NA>",
      "SPEAKER r 1 2.0 1.5 <NA> <NA> a <NA> <NA>"], r"x\.rttm:1: turn 3-5 s of speaker a in r overlaps line 3 "),
    # an exact duplicate line is an overlap too
    (["SPEAKER r 1 1.0 1.0 <NA> <NA> a <NA> <NA>", "SPEAKER r 1 1.0 1.0 <NA> <NA> a <NA> <NA>"],
     r"x\.rttm:2: .* overlaps line 1 "),
])
def test_rttm_read_errors_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "x.rttm"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        read_rttm(path)


def test_rttm_allows_touching_turns_and_other_speakers_overlapping(tmp_path: Path) -> None:
    path = tmp_path / "ok.rttm"
    path.write_text("SPEAKER r 1 0.01 0.05 <NA> <NA> a <NA> <NA>\n"  # ends at 0.060000000000000005
                    "SPEAKER r 1 0.06 1.0 <NA> <NA> a <NA> <NA>\n"
                    "SPEAKER r 1 1.2 1.0 <NA> <NA> b <NA> <NA>\n"
                    "SPEAKER q 1 1.2 1.0 <NA> <NA> a <NA> <NA>\n")
    assert [len(v) for v in read_rttm(path).values()] == [1, 3]


def test_merge_turns() -> None:
    turns = [Turn("r", 0.0, 1.0, "a"), Turn("r", 1.0, 1.0, "a"), Turn("r", 1.5, 1.0, "a"), Turn("r", 3.0, 1.0, "a"),
             Turn("r", 0.5, 1.0, "b"), Turn("q", 0.0, 1.0, "a")]
    assert merge_turns(turns) == [Turn("q", 0.0, 1.0, "a"), Turn("r", 0.0, 2.5, "a"), Turn("r", 0.5, 1.0, "b"),
                                  Turn("r", 3.0, 1.0, "a")]
    assert merge_turns(turns, max_gap=0.5)[1] == Turn("r", 0.0, 4.0, "a")


# ---- DER ----------------------------------------------------------------------------------------------------

REF = {"r1": [Turn("r1", 0.0, 6.0, "A"), Turn("r1", 6.0, 4.0, "B")]}  # 10 s of speech, no overlap


def _der(hyp: dict[str, list[Turn]], ref: dict[str, list[Turn]] = REF, **kw) -> DerResult:
    return diarization_error_rate(ref, hyp, **kw)


def test_der_perfect_and_swapped_labels() -> None:
    for hyp in ([Turn("r1", 0.0, 6.0, "A"), Turn("r1", 6.0, 4.0, "B")],
                [Turn("r1", 0.0, 6.0, "spk1"), Turn("r1", 6.0, 4.0, "spk0")],
                [Turn("r1", 0.0, 6.0, "B"), Turn("r1", 6.0, 4.0, "A")]):
        r = _der({"r1": hyp})
        assert (r.der, r.missed, r.false_alarm, r.confusion, r.total) == (0.0, 0.0, 0.0, 0.0, pytest.approx(10.0))


def test_der_missed_false_alarm_confusion_by_hand() -> None:
    # hyp misses 4-6 s of A: 2 of 10 s missed
    r = _der({"r1": [Turn("r1", 0.0, 4.0, "x"), Turn("r1", 6.0, 4.0, "y")]})
    assert (r.der, r.missed, r.false_alarm, r.confusion) == pytest.approx((20.0, 20.0, 0.0, 0.0))
    # extra 1 s of speech after the end (10-11 s) and a second speaker during 0-0.5 s: 1.5 s false alarm
    r = _der({"r1": [Turn("r1", 0.0, 6.0, "x"), Turn("r1", 6.0, 5.0, "y"), Turn("r1", 0.0, 0.5, "y")]})
    assert (r.der, r.missed, r.false_alarm, r.confusion) == pytest.approx((15.0, 0.0, 15.0, 0.0))
    # 0-6 s "x" on A, 6-10 s "x" too: B's 4 s go to the wrong speaker, 40 % confusion
    r = _der({"r1": [Turn("r1", 0.0, 10.0, "x")]})
    assert (r.der, r.missed, r.false_alarm, r.confusion) == pytest.approx((40.0, 0.0, 0.0, 40.0))
    # optimal mapping: x covers A for 5 s (0-5) and B for 1 s (6-7); y covers A 5-6 and B 7-10 -> x=A, y=B:
    # confusion 1 s (5-6 said y) + 1 s (6-7 said x) = 2 s
    r = _der({"r1": [Turn("r1", 0.0, 5.0, "x"), Turn("r1", 5.0, 1.0, "y"), Turn("r1", 6.0, 1.0, "x"),
                     Turn("r1", 7.0, 3.0, "y")]})
    assert r.confusion == pytest.approx(20.0) and r.der == pytest.approx(20.0)


def test_der_overlap_collar_and_skip_overlap() -> None:
    ref = {"r": [Turn("r", 0.0, 4.0, "A"), Turn("r", 2.0, 4.0, "B")]}  # 2-4 s overlap: 8 s speaker time
    r = _der({"r": [Turn("r", 0.0, 6.0, "x")]}, ref)  # one speaker only: B's 2 s in the overlap are missed,
    assert r.total == pytest.approx(8.0)  # and x (mapped to A or B) confuses the other's 2 s alone
    assert (r.missed, r.confusion) == pytest.approx((25.0, 25.0))
    r = _der({"r": [Turn("r", 0.0, 6.0, "x")]}, ref, skip_overlap=True)  # scored: 0-2 (A) and 4-6 (B)
    assert (r.total, r.missed, r.confusion) == pytest.approx((4.0, 0.0, 50.0))
    # collar 0.25 s on each side of every reference boundary (md-eval convention): a hyp 0.2 s late is forgiven
    late = {"r1": [Turn("r1", 0.2, 5.8, "A"), Turn("r1", 6.0, 4.0, "B")]}
    assert _der(late).missed == pytest.approx(2.0)
    r = _der(late, collar=0.25)
    assert r.der == 0.0 and r.total == pytest.approx(10.0 - 4 * 0.25)  # 0-0.25, 5.75-6.25, 9.75-10 unscored


def test_der_per_recording_overall_missing_and_extra_hyp() -> None:
    ref = {"a": [Turn("a", 0.0, 10.0, "A")], "b": [Turn("b", 0.0, 30.0, "B")], "c": [Turn("c", 1.0, 2.0, "C")]}
    hyp = {"a": [Turn("a", 0.0, 5.0, "h")], "b": [Turn("b", 0.0, 30.0, "h"), Turn("b", 30.0, 3.0, "h")]}
    r = _der(hyp, ref)  # c has no hypothesis: all its 2 s are missed
    assert list(r.per_reco) == ["a", "b", "c"]
    assert (r.per_reco["a"].der, r.per_reco["a"].missed, r.per_reco["a"].total) == pytest.approx((50.0, 50.0, 10.0))
    assert (r.per_reco["b"].der, r.per_reco["b"].false_alarm) == pytest.approx((10.0, 10.0))
    assert (r.per_reco["c"].der, r.per_reco["c"].missed) == pytest.approx((100.0, 100.0))
    # overall weighted by reference time: (5 + 3 + 2) / (10 + 30 + 2), not the mean of 50, 10 and 100
    assert r.total == pytest.approx(42.0)
    assert (r.der, r.missed, r.false_alarm) == pytest.approx((1000 / 42, 700 / 42, 300 / 42))
    table = format_der_table(r)
    assert table.splitlines()[0].startswith("| recording | DER % | missed %")
    assert "| a | 50.00 | 50.00 | 0.00 | 0.00 | 10.00 |" in table
    assert f"| **overall** | {1000 / 42:.2f} | {700 / 42:.2f} | {300 / 42:.2f} | 0.00 | 42.00 |" in table
    with pytest.raises(ValueError, match="hypothesis recordings not in the reference: zz"):
        _der({"zz": [Turn("zz", 0.0, 1.0, "h")]}, ref)


def test_der_uem() -> None:
    hyp = {"r1": [Turn("r1", 0.0, 4.0, "x"), Turn("r1", 6.0, 4.0, "y")]}  # misses 4-6
    r = _der(hyp, uem={"r1": [(0.0, 5.0), (8.0, 10.0)]})  # scored 7 s, 1 s (4-5) missed
    assert (r.total, r.missed) == pytest.approx((7.0, 100 / 7))
    with pytest.raises(ValueError, match="uem has no scored regions for recordings r1"):
        _der(hyp, uem={})


def test_frame_der_counts_by_hand_and_against_pyannote() -> None:
    ref = torch.tensor([[[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]]], dtype=torch.bool)
    pred = torch.tensor([[[1, 0], [1, 0], [1, 0], [1, 1], [0, 1]]], dtype=torch.bool)
    valid = torch.tensor([[True, True, True, True, False]])
    # frame 1: miss 1; frame 2: confusion 1; frame 3: false alarm 2; frame 4 not scored
    assert frame_der_counts(pred, ref, valid) == {"missed": 1.0, "false_alarm": 2.0, "confusion": 1.0,
                                                  "speech": 4.0}
    # random blocks with 10 % of the frames flipped (so speaker k <-> k is the optimal mapping): same seconds
    # as pyannote's DER on the turns of the same frames
    rng = np.random.default_rng(1)
    ref = np.repeat(rng.random((40, 3)) > 0.6, 5, axis=0)
    pred = ref ^ (rng.random(ref.shape) < 0.1)
    counts = frame_der_counts(torch.from_numpy(pred)[None], torch.from_numpy(ref)[None], torch.ones(1, 200, dtype=bool))
    shift = 0.02
    r = diarization_error_rate({"r": posteriors_to_turns("r", ref.astype(float), shift, 0.5, 1)},
                               {"r": posteriors_to_turns("r", pred.astype(float), shift, 0.5, 1)})
    assert r.total == pytest.approx(counts["speech"] * shift)
    for key, pct in (("missed", r.missed), ("false_alarm", r.false_alarm), ("confusion", r.confusion)):
        assert pct == pytest.approx(100 * counts[key] / counts["speech"])


# ---- posteriors <-> frames ----------------------------------------------------------------------------------


def test_posteriors_to_turns_threshold_median_and_boundaries() -> None:
    post = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.7], [0.9, 0.8], [0.7, 0.5], [0.1, 0.9], [0.1, 0.9]])
    # threshold 0.5 (strictly above): spk0 1 1 0 1 1 0 0 ; spk1 0 0 1 1 0 1 1
    turns = posteriors_to_turns("r", post, frame_shift=0.02, threshold=0.5, median=1)
    assert [(t.speaker, round(t.start, 6), round(t.end, 6)) for t in turns] == [
        ("spk0", 0.0, 0.04), ("spk1", 0.04, 0.08), ("spk0", 0.06, 0.1), ("spk1", 0.1, 0.14)]
    # median 3 (zero-padded): spk0 1 1 1 1 1 0 0 (the 1-frame gaps filled); spk1 0 0 1 1 1 1 1 (frame 4's
    # window holds 1 0 1; the last frame's window 1 1 and the zero past the end)
    turns = posteriors_to_turns("r", post, frame_shift=0.02, threshold=0.5, median=3, speakers=["a", "b"])
    assert [(t.speaker, round(t.start, 6), round(t.dur, 6)) for t in turns] == [("a", 0.0, 0.1), ("b", 0.04, 0.1)]
    # a 1-frame blip is removed, a 2-frame one kept; edges see zeros past the ends (a lone first frame goes)
    post = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]]).T
    turns = posteriors_to_turns("r", post, frame_shift=0.1, threshold=0.5, median=3)
    assert [(round(t.start, 6), round(t.end, 6)) for t in turns] == [(0.8, 1.0), (1.2, 1.4)]
    with pytest.raises(ValueError, match="positive odd"):
        posteriors_to_turns("r", post, frame_shift=0.1, threshold=0.5, median=4)


def test_median_filter_matches_scipy_medfilt() -> None:
    rng = np.random.default_rng(0)
    post = rng.random((200, 3))
    for median in (1, 3, 11):
        ours = frame_labels(posteriors_to_turns("r", post, 0.02, 0.6, median), ["spk0", "spk1", "spk2"], 200, 0.02)
        ref = medfilt(np.where(post > 0.6, 1, 0), (median, 1))  # EEND's make_rttm.py post-processing
        np.testing.assert_array_equal(ours, ref)


def test_frame_labels_centre_rule_and_inverse() -> None:
    # shift 0.1: frame t centre (t + 0.5) * 0.1; turn 0.14-0.36 covers centres 0.15, 0.25, 0.35 -> frames 1..3;
    # a turn ending exactly on a centre (0.65) leaves that frame out; starting on one (0.45) keeps it
    turns = [Turn("r", 0.14, 0.22, "a"), Turn("r", 0.45, 0.2, "b"), Turn("r", 0.7, 5.0, "a")]
    lab = frame_labels(turns, ["a", "b"], num_frames=9, frame_shift=0.1)
    assert lab.dtype == np.float32 and lab.shape == (9, 2)
    assert lab[:, 0].tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 1]  # the last turn is cut at 9 frames
    assert lab[:, 1].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0]
    back = posteriors_to_turns("r", lab, 0.1, 0.5, 1, speakers=["a", "b"])
    np.testing.assert_array_equal(frame_labels(back, ["a", "b"], 9, 0.1), lab)
    with pytest.raises(ValueError, match="speaker 'c' .* is not one of"):
        frame_labels([Turn("r", 0.0, 1.0, "c")], ["a", "b"], 9, 0.1)


# ---- PIT BCE ------------------------------------------------------------------------------------------------


def _pit_by_hand(logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> tuple[float, list]:
    """Per utterance and permutation: mean BCE over its valid frames and speakers; batch = frame-weighted mean."""
    total, best_perms = 0.0, []
    for b in range(len(lengths)):
        n = int(lengths[b])
        losses = {perm: F.binary_cross_entropy_with_logits(logits[b, :n], labels[b, :n][:, list(perm)]).item()
                  for perm in itertools.permutations(range(labels.shape[2]))}
        best = min(losses, key=losses.get)
        best_perms.append(best)
        total += losses[best] * n
    return total / float(lengths.sum()), best_perms


@pytest.mark.parametrize("speakers", [1, 2, 3, 4])
def test_pit_bce_equals_the_minimum_over_permutations(speakers: int) -> None:
    g = torch.Generator().manual_seed(speakers)
    logits = torch.randn(5, 30, speakers, generator=g, dtype=torch.float64) * 3
    labels = (torch.rand(5, 30, speakers, generator=g) > 0.5).double()
    lengths = torch.tensor([30, 12, 1, 25, 30])
    loss, permuted = pit_bce(logits, labels, lengths)
    ref, best_perms = _pit_by_hand(logits, labels, lengths)
    assert loss.item() == pytest.approx(ref, rel=1e-12)
    for b, perm in enumerate(best_perms):
        torch.testing.assert_close(permuted[b], labels[b][:, list(perm)])


def test_pit_bce_swapped_labels_padding_and_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    labels = (torch.rand(3, 40, 2, generator=g) > 0.5).float()
    logits = (labels * 2 - 1) * 2 + torch.randn(3, 40, 2, generator=g)  # agrees with the labels as given
    logits.requires_grad_(True)
    lengths = torch.tensor([40, 33, 17])
    loss, permuted = pit_bce(logits, labels, lengths)
    swapped_loss, swapped_back = pit_bce(logits, labels.flip(-1), lengths)
    assert swapped_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    torch.testing.assert_close(swapped_back, labels)  # the swap is undone
    torch.testing.assert_close(permuted, labels)
    # frames past the lengths (logits and labels) do not count
    garbage = logits.detach().clone()
    other = labels.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e4
        other[b, n:] = 1 - other[b, n:]
    assert pit_bce(garbage, other, lengths)[0].item() == pytest.approx(loss.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and (logits.grad[2, 17:] == 0).all() and logits.grad[2, :17].abs().sum() > 0


def test_pit_bce_rejects_bad_input() -> None:
    x = torch.zeros(2, 5, 5)
    with pytest.raises(ValueError, match="1 to 4 speakers, got 5"):
        pit_bce(x, x, torch.tensor([5, 5]))
    x = torch.zeros(2, 5, 2)
    with pytest.raises(ValueError, match="lengths must lie in 0..5"):
        pit_bce(x, x, torch.tensor([6, 5]))
    with pytest.raises(ValueError, match="both be"):
        pit_bce(x, x[:, :, :1], torch.tensor([5, 5]))
