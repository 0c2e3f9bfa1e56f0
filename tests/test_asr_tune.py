"""Word decoding through the CLIs: asr_decode --decoder lexicon on stored log posteriors, and asr_tune choosing
the n-gram weight with the lowest dev WER, then applied."""
from __future__ import annotations

import json

import kaldiio
import numpy as np
import pytest

from wavlm.bin import asr_decode, asr_tune
from wavlm.data.tokenizer import Tokenizer, train_tokenizer
from wavlm.decode.logprobs import write_info, write_units
from wavlm.decode.ngram import build_arpa

WORDS = ["THE", "CAT", "BAT", "SAT", "MAT", "A", "FLEW", "ON"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A dev set of log posteriors whose acoustics prefer BAT where the LM (CAT follows THE) says CAT."""
    d = tmp_path_factory.mktemp("tune")
    tok = Tokenizer(train_tokenizer([" ".join(WORDS)], d / "units"))
    text = d / "lm.txt"
    text.write_text("THE CAT SAT\n" * 20 + "THE CAT SAT ON THE MAT\n" * 5 + "A BAT FLEW\n" * 5)
    lm = build_arpa(text, d / "3-gram.arpa", order=3)
    (d / "lexicon.txt").write_text("".join(f"{w}\t{' '.join(w)}\n" for w in WORDS))
    refs = {"u1": "THE CAT SAT", "u2": "THE CAT SAT ON THE MAT", "u3": "A BAT FLEW"}

    def posteriorgram(sentence: str) -> np.ndarray:
        rows = []
        for w in sentence.split():
            for u in ("▁", *w):
                dist = {"B": 0.6, "C": 0.3} if (u == "C" and w == "CAT") else {u: 0.9}
                for frame in (dist, {"<blank>": 0.9}):
                    rest = (1.0 - sum(frame.values())) / (len(tok) - len(frame))
                    rows.append([frame.get(t, rest) for t in tok.tokens])
        return np.log(np.array(rows, dtype=np.float32))

    lp = d / "logprobs"
    lp.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{lp}/logprobs.ark,{lp}/logprobs.scp") as w:
        for u, s in refs.items():
            w(u, posteriorgram(s))
    write_units(lp, tok)
    write_info(lp, {"vocab_size": len(tok), "frame_rate": 50.0, "model": "constructed", "model_stamp": []})
    (d / "text").write_text("".join(f"{u} {s}\n" for u, s in refs.items()))
    return d, lm


def test_tune_then_decode_with_the_best_weights(setup, tmp_path):
    d, lm = setup
    lex = ["--decoder", "lexicon", "--beam_size", "50", "--lexicon", str(d / "lexicon.txt"), "--kenlm", str(lm)]
    out = tmp_path / "tune"
    assert asr_tune.main(["--logprobs", str(d / "logprobs"), "--ref", str(d / "text"), "--out", str(out), *lex,
                          "--grid", "kenlm_weight=0,2 word_score=0", "--nj", "2"]) == 0
    best = json.loads((out / "best.json").read_text())
    # without the LM the acoustics win (BAT for CAT: 2 errors in 12 words); with it, no error
    grid = (out / "grid.tsv").read_text().splitlines()
    assert grid == ["kenlm_weight\tword_score\twer", "0\t0\t16.67", "2\t0\t0.00"]
    assert best["options"] == {"kenlm_weight": 2.0, "word_score": 0.0} and best["wer"] == 0.0
    assert asr_tune.main(["--out", str(out), "--print_best", "--logprobs", "x"]) == 0
    dec = tmp_path / "dec"
    assert asr_decode.main(["--logprobs", str(d / "logprobs"), "--out", str(dec), *lex, "--kenlm_weight", "2",
                            "--word_score", "0", "--nj", "1", "--job", "1"]) == 0
    assert asr_decode.main(["--logprobs", str(d / "logprobs"), "--out", str(dec), *lex, "--kenlm_weight", "2",
                            "--word_score", "0", "--nj", "1", "--merge"]) == 0
    assert (dec / "text").read_text() == (d / "text").read_text()


def test_print_best_options(setup, tmp_path, capsys):
    (tmp_path / "best.json").write_text(json.dumps({"options": {"kenlm_weight": 1.5, "word_score": -1.0}}))
    assert asr_tune.main(["--out", str(tmp_path), "--print_best"]) == 0
    assert capsys.readouterr().out.strip() == "--kenlm_weight 1.5 --word_score -1"


def test_bad_options_are_named(setup, tmp_path, capsys):
    d, lm = setup
    base = ["--logprobs", str(d / "logprobs"), "--out", str(tmp_path / "o"), "--nj", "1"]
    for argv, main, message in (
            ([*base, "--job", "1", "--kenlm", str(lm)], asr_decode.main, "--kenlm is an option of --decoder lexicon"),
            ([*base, "--job", "1", "--decoder", "lexicon", "--kenlm", str(tmp_path / "no.arpa")], asr_decode.main,
             "no.arpa: no such file"),
            ([*base, "--ref", str(d / "text"), "--grid", "nope=1"], asr_tune.main, "not asr_decode options"),
            ([*base, "--ref", str(d / "text"), "--grid", "word_lm_weight=1"], asr_tune.main, "needs --word_lm")):
        assert main(argv) == 1
        assert message in capsys.readouterr().err
