"""Tuning decoding weights on a dev set: the grid, the choice of the lowest WER, resume."""
from __future__ import annotations

import json

import pytest

from wavlm.decode.tune import TuneError, parse_grid, tune

REFS = {"u1": "A CAT SAT", "u2": "ON THE MAT"}


def test_parse_grid():
    assert parse_grid("lm_weight=0.5,2 word_score=-1,0,1") == [
        {"lm_weight": 0.5, "word_score": -1.0}, {"lm_weight": 0.5, "word_score": 0.0},
        {"lm_weight": 0.5, "word_score": 1.0}, {"lm_weight": 2.0, "word_score": -1.0},
        {"lm_weight": 2.0, "word_score": 0.0}, {"lm_weight": 2.0, "word_score": 1.0}]
    for bad in ("lm_weight", "lm_weight=a", "", "x=1 x=2"):
        with pytest.raises(TuneError):
            parse_grid(bad)


def test_tune_picks_the_lowest_dev_wer_and_resumes(tmp_path):
    calls = []

    def decode(p):  # word errors: |lm_weight - 1| + |word_score| (hand-made: the best is lm_weight 1, word_score 0)
        calls.append(p)
        n = int(abs(p["lm_weight"] - 1) + abs(p["word_score"]))
        words = "A CAT SAT ON THE MAT".split()
        hyp = ["X"] * n + words[n:]
        return {"u1": " ".join(hyp[:3]), "u2": " ".join(hyp[3:])}

    points = parse_grid("lm_weight=0,1,2,3 word_score=-2,0,2")
    best = tune(points, decode, REFS, tmp_path, stamp={"model": "m"})
    assert best["options"] == {"lm_weight": 1.0, "word_score": 0.0} and best["wer"] == 0.0
    saved = json.loads((tmp_path / "best.json").read_text())
    assert saved["options"] == best["options"]
    rows = (tmp_path / "grid.tsv").read_text().splitlines()
    assert rows[0] == "lm_weight\tword_score\twer" and len(rows) == 13
    assert "3\t2\t66.67" in rows  # 4 errors of 6 words
    # a second run decodes nothing; another stamp (model, data) decodes again
    n = len(calls)
    tune(points, decode, REFS, tmp_path, stamp={"model": "m"})
    assert len(calls) == n
    tune(points, decode, REFS, tmp_path, stamp={"model": "other"})
    assert len(calls) == 2 * n


def test_ties_go_to_the_first_point(tmp_path):
    best = tune(parse_grid("lm_weight=2,1"), lambda p: dict(REFS), REFS, tmp_path)
    assert best["options"] == {"lm_weight": 2.0}
