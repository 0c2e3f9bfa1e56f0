"""WER scoring: hand-counted alignments, the missing/extra/empty policies with their messages, a randomized
check against an independent edit-distance DP, and the score_wer CLI (result files and RESULTS.md)."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from wavlm.bin import score_wer
from wavlm.metrics.wer import WerError, align, format_alignment, read_text, score


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Independent reference: plain Levenshtein DP over words."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def test_hand_counted_sub_and_ins():
    a = align("A B C D".split(), "A X C D E".split())
    assert (a.correct, a.sub, a.del_, a.ins) == (3, 1, 0, 1)
    assert a.pairs == [("A", "A"), ("B", "X"), ("C", "C"), ("D", "D"), (None, "E")]
    assert a.marks() == ["", "S", "", "", "I"]
    res = score({"u": "A B C D"}, {"u": "A X C D E"})
    assert res.wer == pytest.approx(50.0)
    assert res.ser == pytest.approx(100.0)


def test_hand_counted_deletion_in_middle():
    a = align("A B C D".split(), "A D".split())
    assert (a.correct, a.sub, a.del_, a.ins) == (2, 0, 2, 0)
    assert a.pairs == [("A", "A"), ("B", None), ("C", None), ("D", "D")]


def test_wer_can_exceed_100_percent():
    res = score({"u": "A"}, {"u": "B C D"})
    assert (res.sub, res.del_, res.ins) == (1, 0, 2)
    assert res.wer == pytest.approx(300.0)
    assert res.summary().splitlines()[0] == "%WER 300.00 [ 3 / 1, 2 ins, 0 del, 1 sub ]"


def test_all_deletions_and_all_insertions():
    a = align(["A", "B", "C"], [])
    assert (a.correct, a.sub, a.del_, a.ins) == (0, 0, 3, 0)
    assert a.pairs == [("A", None), ("B", None), ("C", None)]
    b = align([], ["A", "B"])
    assert (b.correct, b.sub, b.del_, b.ins) == (0, 0, 0, 2)
    assert b.pairs == [(None, "A"), (None, "B")]


def test_empty_hyp_is_all_deletions():
    res = score({"u1": "A B", "u2": "C D E"}, {"u1": "A B", "u2": ""})
    assert (res.n_ref_words, res.correct, res.sub, res.del_, res.ins) == (5, 2, 0, 3, 0)
    assert res.wer == pytest.approx(60.0)
    assert res.n_err_utts == 1 and res.ser == pytest.approx(50.0)
    assert res.missing == []


def test_missing_hyp_is_an_error_naming_file_and_utt():
    with pytest.raises(WerError, match=r"exp/decode/text: 1 of 2 utterances of data/text have no hypothesis, "
                                       r"e\.g\. u2"):
        score({"u1": "A", "u2": "B C"}, {"u1": "A"}, ref_name="data/text", hyp_name="exp/decode/text")


def test_allow_missing_counts_deletions_and_reports():
    res = score({"u1": "A", "u2": "B C"}, {"u1": "A"}, allow_missing=True)
    assert res.missing == ["u2"]
    assert (res.del_, res.n_ref_words) == (2, 3)
    assert res.summary().splitlines()[2] == "Scored 2 sentences, 1 not present in hyp."
    assert [s.missing for s in res.utts] == [False, True]


def test_hyp_not_in_ref_is_an_error():
    with pytest.raises(WerError, match=r"hyp\.txt: 1 utterances are not in the reference ref\.txt, e\.g\. zz"):
        score({"u1": "A"}, {"u1": "A", "zz": "B"}, ref_name="ref.txt", hyp_name="hyp.txt")


def test_empty_reference_is_an_error_naming_utt():
    with pytest.raises(WerError, match="utterance u2 has an empty reference"):
        score({"u1": "A", "u2": "  "}, {"u1": "A", "u2": "B"})


def test_bad_word_is_rejected():
    with pytest.raises(WerError, match="bad word"):
        align(["A B"], ["A"])


def test_read_text_errors_name_file_and_line(tmp_path):
    f = tmp_path / "text"
    f.write_text("u1 A B\nu2 \nu3\tC  D\n")
    assert read_text(f) == {"u1": "A B", "u2": "", "u3": "C D"}
    with pytest.raises(WerError, match=rf"{f}:2: utterance u2 has an empty transcript"):
        read_text(f, allow_empty=False)
    f.write_text("u1 A B\n  C D\n")
    with pytest.raises(WerError, match=rf"{f}:2: line starts with whitespace, no utterance id"):
        read_text(f)
    f.write_text("u1 A B\n\nu2 C\n")
    with pytest.raises(WerError, match=rf"{f}:2: empty line"):
        read_text(f)
    f.write_text("u1 A\nu2 B\nu1 C\n")
    with pytest.raises(WerError, match=rf"{f}:3: duplicate utterance u1 \(first on line 1\)"):
        read_text(f)


def test_randomized_against_independent_dp():
    rng = random.Random(1234)
    vocab = ["a", "b", "c", "d"]
    refs, hyps, total = {}, {}, 0
    for k in range(600):
        ref = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        a = align(ref, hyp)
        d = edit_distance(ref, hyp)
        assert a.errors == d, (ref, hyp, a)
        # whatever the tie-breaking, the counts must add up to the two lengths ...
        assert a.correct + a.sub + a.del_ == len(ref) and a.correct + a.sub + a.ins == len(hyp)
        # ... and the alignment must spell out both sequences with consistent marks
        assert [r for r, _ in a.pairs if r is not None] == ref
        assert [h for _, h in a.pairs if h is not None] == hyp
        assert sum((r is not None and h is not None and r != h) for r, h in a.pairs) == a.sub
        if ref:
            refs[f"utt{k:04d}"], hyps[f"utt{k:04d}"] = " ".join(ref), " ".join(hyp)
            total += d
    res = score(refs, hyps)
    assert res.errors == total
    assert res.wer == pytest.approx(100.0 * total / sum(len(r.split()) for r in refs.values()))


def test_format_alignment_marks():
    res = score({"u1": "A B C D"}, {"u1": "A X C D E"})
    assert format_alignment(res.utts[0]).split("\n") == [
        "id: u1", "Scores: (#C #S #D #I) 3 1 0 1", "REF:  A B C D ***", "HYP:  A X C D E", "Eval:   S     I", "", ""]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cli_end_to_end(tmp_path, capsys):
    ref = write(tmp_path / "data/test/text", "u1 A B C D\nu2 E F\nu3 G H I\n")
    hyp = write(tmp_path / "exp/asr/decode_a/test/text", "u1 A X C D E\nu2 E F\nu3\n")
    out = tmp_path / "exp/asr/decode_a/test/wer"
    assert score_wer.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--json"]) == 0
    line = "%WER 55.56 [ 5 / 9, 1 ins, 3 del, 1 sub ]"
    assert capsys.readouterr().out.strip() == line
    assert (out / "result.txt").read_text().splitlines() == [
        line, "%SER 66.67 [ 2 / 3 ]", "Scored 3 sentences, 0 not present in hyp."]
    per_utt = (out / "per_utt.txt").read_text()
    assert "id: u3\nScores: (#C #S #D #I) 0 0 3 0\nREF:  G   H   I\nHYP:  *** *** ***\nEval: D   D   D\n" in per_utt
    r = json.loads((out / "result.json").read_text())
    assert (r["n_utts"], r["n_ref_words"], r["sub"], r["del"], r["ins"]) == (3, 9, 1, 3, 1)
    assert r["wer"] == pytest.approx(500 / 9) and r["ser"] == pytest.approx(200 / 3)

    hyp2 = write(tmp_path / "exp/asr/decode_b/test/text", "u1 A B C D\nu2 E F\nu3 G H I\n")
    out2 = tmp_path / "exp/asr/decode_b/test/wer"
    assert score_wer.main(["--ref", str(ref), "--hyp", str(hyp2), "--out", str(out2), "--json"]) == 0
    md = tmp_path / "exp/asr/RESULTS.md"
    # the glob is expanded by score_wer itself when the shell did not
    assert score_wer.main(["--summarize", str(tmp_path / "exp/asr/decode_*/*/wer"), "--out", str(md)]) == 0
    lines = md.read_text().splitlines()
    i = lines.index("| set | unit | #utts | #tokens | error rate | sub | del | ins | SER |")
    assert lines[i + 2:] == ["| decode_a/test | word | 3 | 9 | 55.56 | 11.11 | 33.33 | 11.11 | 66.67 |",
                             "| decode_b/test | word | 3 | 9 | 0.00 | 0.00 | 0.00 | 0.00 | 0.00 |"]


def test_cli_character_error_rate(tmp_path, capsys):
    ref = write(tmp_path / "ref", "u1 AB CD\n")
    hyp = write(tmp_path / "hyp", "u1 AB  CX\n")  # one substitution out of 5 characters (space counted once)
    assert score_wer.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(tmp_path / "cer"), "--unit", "char",
                           "--json"]) == 0
    assert capsys.readouterr().out.strip() == "%CER 20.00 [ 1 / 5, 0 ins, 0 del, 1 sub ]"
    assert json.loads((tmp_path / "cer" / "result.json").read_text())["unit"] == "char"


def test_cli_errors(tmp_path, capsys):
    # setup_logging() replaces the root handlers (so no caplog); the errors go to stderr
    ref = write(tmp_path / "ref", "u1 A B\nu2 C\n")
    hyp = write(tmp_path / "hyp", "u1 A B\n")
    out = tmp_path / "wer"
    assert score_wer.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(out)]) == 1
    assert f"{hyp}: 1 of 2 utterances of {ref} have no hypothesis, e.g. u2" in capsys.readouterr().err
    assert not (out / "result.txt").exists()
    assert score_wer.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--allow_missing"]) == 0
    assert (out / "result.txt").read_text().startswith("%WER 33.33 [ 1 / 3, 0 ins, 1 del, 0 sub ]\n")
    assert score_wer.main(["--summarize", str(out), "--out", str(tmp_path / "R.md")]) == 1
    assert "result.json: missing" in capsys.readouterr().err


def test_cli_module_help():
    p = subprocess.run([sys.executable, "-m", "wavlm.bin.score_wer", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--summarize" in p.stdout
