"""Word decoding with a lexicon and an n-gram: flashlight-text's CTC beam search on constructed
posteriorgrams, the ARPA writer (normalisation, a hand-computed model, KenLM reading it the same), and the
errors for bad lexicons and LM files."""
from __future__ import annotations

import gzip
import logging
import math
import string
from pathlib import Path

import numpy as np
import pytest

from wavlm.decode.flashlight import DecoderError, LexiconCTCDecoder
from wavlm.decode.lexicon import (
    LexiconError,
    build_spelling_lexicon,
    check_units,
    read_lexicon,
    read_words,
    spell,
)
from wavlm.decode.ngram import ArpaError, build_arpa, check_lm, discounts, kneser_ney, read_arpa, write_arpa

TOKENS = ["<blank>", "<unk>", "▁", "'", *string.ascii_uppercase, "<sos/eos>"]
LEXICON = ["THE", "CAT", "BAT", "SAT", "MAT", "A", "FLEW", "ON"]


def posteriorgram(frames: list[str | dict[str, float]]) -> np.ndarray:
    """Log-probabilities [T, V]: each item is one unit (probability 0.9) or {unit: probability}, followed by
    a blank frame; what an item leaves is spread evenly over the other units."""
    rows = []
    for item in frames:
        for dist in (item if isinstance(item, dict) else {item: 0.9}, {"<blank>": 0.9}):
            rest = (1.0 - sum(dist.values())) / (len(TOKENS) - len(dist))
            rows.append([dist.get(t, rest) for t in TOKENS])
    return np.log(np.array(rows, dtype=np.float32))


def spelled(text: str, **ambiguous: dict[str, float]) -> np.ndarray:
    """`▁`-prefixed words as a posteriorgram; ambiguous={"C": {...}} replaces the unit C by a distribution."""
    units = [u for w in text.split() for u in ("▁", *w)]
    return posteriorgram([ambiguous.get(u, u) for u in units])


def greedy(logprobs: np.ndarray) -> list[str]:
    ids = logprobs.argmax(1)
    keep = [t for i, t in enumerate(ids) if t != 0 and (i == 0 or t != ids[i - 1])]
    return "".join(TOKENS[t] for t in keep).replace("▁", " ").split()


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lex") / "lexicon.txt"
    path.write_text("".join(f"{w}\t{' '.join(w)}\n" for w in LEXICON))
    return path


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> Path:
    """A trigram where CAT follows THE and BAT only follows A."""
    text = tmp_path_factory.mktemp("lm") / "text.txt"
    text.write_text("THE CAT SAT\n" * 20 + "THE CAT SAT ON THE MAT\n" * 5 + "A BAT FLEW\n" * 5 + "THE MAT\n" * 3)
    return build_arpa(text, text.with_name("3-gram.arpa.gz"), order=3)


# ---- beam search ---------------------------------------------------------------------------------

def test_lexicon_decoder_returns_only_lexicon_words(lexicon: Path) -> None:
    x = spelled("THE KAT SAT", K={"K": 0.6, "C": 0.3})
    assert greedy(x) == ["THE", "KAT", "SAT"]  # the acoustics alone spell a word outside the lexicon
    hyps = LexiconCTCDecoder(TOKENS, lexicon, None, beam_size=50, nbest=5)(x)
    assert hyps and all(w in LEXICON for h in hyps for w in h.words)
    assert hyps[0].words == ["THE", "CAT", "SAT"]
    assert len({tuple(h.words) for h in hyps}) == len(hyps)  # N-best: distinct word sequences, best first
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_ngram_prefers_the_lm_consistent_words(lexicon: Path, lm: Path) -> None:
    x = spelled("THE CAT SAT", C={"B": 0.55, "C": 0.35})  # the acoustics prefer BAT
    assert greedy(x) == ["THE", "BAT", "SAT"]
    no_lm = LexiconCTCDecoder(TOKENS, lexicon, None, beam_size=50)(x)
    assert no_lm[0].words == ["THE", "BAT", "SAT"] and no_lm[0].lm_score == 0
    with_lm = LexiconCTCDecoder(TOKENS, lexicon, lm, beam_size=50, nbest=2)(x)
    assert with_lm[0].words == ["THE", "CAT", "SAT"]
    assert with_lm[1].words == ["THE", "BAT", "SAT"] and with_lm[0].lm_score > with_lm[1].lm_score
    # the LM score is the sentence's log10 probability under the ARPA model
    assert with_lm[0].lm_score == pytest.approx(sentence_log10(read_arpa(lm), ["THE", "CAT", "SAT"]), abs=1e-3)
    # with the LM weight at 0 the acoustics decide again
    assert LexiconCTCDecoder(TOKENS, lexicon, lm, beam_size=50, lm_weight=0.0)(x)[0].words == ["THE", "BAT", "SAT"]


def test_lexicon_free_spells_an_out_of_lexicon_word(lexicon: Path) -> None:
    x = spelled("THE KAT SAT", K={"K": 0.6, "C": 0.3})
    assert LexiconCTCDecoder(TOKENS, None, None, beam_size=50)(x)[0].words == ["THE", "KAT", "SAT"]
    assert LexiconCTCDecoder(TOKENS, lexicon, None, beam_size=50)(x)[0].words == ["THE", "CAT", "SAT"]


def test_lexicon_free_with_a_unit_lm(tmp_path: Path) -> None:
    text = tmp_path / "units.txt"
    text.write_text("▁ T H E ▁ C A T ▁ S A T\n" * 10 + "▁ A ▁ B A T\n" * 2)
    unit_lm = build_arpa(text, tmp_path / "units.arpa", order=4)
    x = spelled("THE CAT SAT", C={"B": 0.55, "C": 0.35})
    assert LexiconCTCDecoder(TOKENS, None, None, beam_size=50)(x)[0].words == ["THE", "BAT", "SAT"]
    assert LexiconCTCDecoder(TOKENS, None, unit_lm, beam_size=50)(x)[0].words == ["THE", "CAT", "SAT"]


def test_never_emits_sos_eos_or_unk() -> None:
    x = spelled("A CAT")
    for frame, unit in ((1, "<sos/eos>"), (5, "<unk>")):  # blank frames where another unit is likelier
        x[frame] = np.log(np.full(len(TOKENS), 0.01 / (len(TOKENS) - 2), dtype=np.float32))
        x[frame, TOKENS.index(unit)], x[frame, 0] = math.log(0.9), math.log(0.09)
    assert greedy(x) != ["A", "CAT"]
    hyp = LexiconCTCDecoder(TOKENS, None, None, beam_size=50)(x)[0]
    assert hyp.words == ["A", "CAT"]


def test_decoder_input_checks(lexicon: Path, lm: Path) -> None:
    dec = LexiconCTCDecoder(TOKENS, lexicon, None, beam_size=10)
    with pytest.raises(DecoderError, match=r"\[T, 31\]"):
        dec(np.zeros((5, 7), dtype=np.float32))
    with pytest.raises(DecoderError, match="NaN"):
        dec(np.full((5, len(TOKENS)), np.nan, dtype=np.float32))
    with pytest.raises(DecoderError, match="over the units"):
        LexiconCTCDecoder(TOKENS, None, lm)  # lexicon-free with a word LM


# ---- ARPA writer -------------------------------------------------------------------------------------

def log10_prob(model, word: str, context: tuple[str, ...]) -> float:
    """ARPA back-off: p(w | h) if hw is listed, else backoff(h) * p(w | h without its first word)."""
    context = context[-(model.order - 1):] if model.order > 1 else ()
    bow = 0.0
    while True:
        g = (*context, word)
        if g in model.prob[len(g) - 1]:
            return bow + model.prob[len(g) - 1][g]
        if context:
            bow += model.backoff[len(context) - 1].get(context, 0.0)
            context = context[1:]
        else:
            raise AssertionError(f"{word!r} has no unigram")


def sentence_log10(model, words: list[str]) -> float:
    toks = ["<s>", *words, "</s>"]
    return sum(log10_prob(model, w, tuple(toks[:i])) for i, w in enumerate(toks) if i)


def random_corpus(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    vocab = "THE A CAT DOG SAT RAN ON MAT".split()
    p = rng.dirichlet(np.ones(len(vocab)))
    return [list(rng.choice(vocab, size=int(rng.integers(1, 7)), p=p)) for _ in range(n)]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_arpa_probabilities_sum_to_one_in_every_context(order: int, tmp_path: Path) -> None:
    path = write_arpa(kneser_ney(random_corpus(300, order), order, extra_words=["NEVERSEEN"]),
                      tmp_path / "lm.arpa")
    model = read_arpa(path)
    vocab = [g[0] for g in model.prob[0] if g[0] != "<s>"]
    assert {"</s>", "<unk>", "NEVERSEEN"} <= set(vocab)
    contexts = {g for n in range(order - 1) for g in model.prob[n]} | {("<unk>", "NEVERSEEN", "<unk>")[: order - 1]}
    contexts = {c for c in contexts if c[-1:] != ("</s>",)}  # nothing follows </s>
    assert len(contexts) > (10 if order > 1 else 0)
    for h in contexts:
        total = sum(10 ** log10_prob(model, w, h) for w in vocab)
        assert total == pytest.approx(1.0, abs=2e-5), h


def test_kneser_ney_by_hand(tmp_path: Path) -> None:
    """Bigram, fallback discounts 0.5/1/1.5 (counts of counts too few), computed by hand:
    unigram continuation counts A 1, B 2, C 1, </s> 2 (total 6); gamma = (0.5*2 + 1*2)/6 = 0.5 spread over
    5 words (A B C </s> <unk>); bigrams after A: A B 2, A C 1 (total 3), gamma(A) = (1*1 + 0.5*1)/3 = 0.5."""
    sents = [s.split() for s in ("A B", "A B", "A C", "B")]
    model = read_arpa(write_arpa(kneser_ney(sents, 2), tmp_path / "lm.arpa.gz"))
    p = {w: (c - d) / 6 + 0.5 / 5 for w, c, d in (("A", 1, 0.5), ("B", 2, 1), ("C", 1, 0.5), ("</s>", 2, 1))}
    p["<unk>"] = 0.1
    for w, want in p.items():
        assert 10 ** log10_prob(model, w, ()) == pytest.approx(want, rel=1e-6)
    assert 10 ** log10_prob(model, "B", ("A",)) == pytest.approx(1 / 3 + 0.5 * p["B"], rel=1e-6)
    assert 10 ** log10_prob(model, "C", ("A",)) == pytest.approx(0.5 / 3 + 0.5 * p["C"], rel=1e-6)
    assert 10 ** log10_prob(model, "A", ("A",)) == pytest.approx(0.5 * p["A"], rel=1e-6)  # unseen: backs off
    assert model.prob[0][("<s>",)] == -99


def test_modified_kneser_ney_discounts() -> None:
    """Chen & Goodman's estimates from counts of counts t1..t4 = 10, 5, 3, 2: Y = 10 / (10 + 2 * 5) = 0.5,
    D1 = 1 - 2Y * 5/10, D2 = 2 - 3Y * 3/5, D3+ = 3 - 4Y * 2/3; counts above 4 and zero counts do not count."""
    adjusted = [1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [5, 9, 9] + [0] * 7
    assert discounts(adjusted, 2) == pytest.approx((0.5, 1.1, 3 - 4 / 3))
    assert discounts([1, 1, 2, 3], 2) == (0.5, 1.0, 1.5)  # no t4: lmplz's fallback


def test_kenlm_reads_our_arpa_as_we_do(tmp_path: Path) -> None:
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    path = write_arpa(kneser_ney(random_corpus(200, 7), 3), tmp_path / "lm.arpa.gz")
    model = read_arpa(path)
    words = sorted(g[0] for g in model.prob[0] if g[0] != "<s>")
    kenlm = KenLM(str(path), Dictionary(words))
    state = kenlm.start(False)
    for history in (["THE"], ["THE", "CAT"], ["DOG", "DOG"]):
        state = kenlm.start(False)
        for w in history:
            state, _ = kenlm.score(state, words.index(w))
        ctx = ("<s>", *history)
        for i, w in enumerate(words):
            if w != "</s>":
                assert kenlm.score(state, i)[1] == pytest.approx(log10_prob(model, w, ctx), abs=1e-4)
        assert kenlm.finish(state)[1] == pytest.approx(log10_prob(model, "</s>", ctx), abs=1e-4)


def test_arpa_bytes_are_deterministic(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("\n".join(" ".join(s) for s in random_corpus(100, 3)) + "\n")
    a = build_arpa(text, tmp_path / "a.arpa.gz", order=3).read_bytes()
    b = build_arpa(text, tmp_path / "b.arpa.gz", order=3).read_bytes()
    assert a == b and gzip.decompress(a).startswith(b"\n\\data\\\n")


# ---- lexicons ---------------------------------------------------------------------------------------

def test_read_lexicon_keeps_every_pronunciation(tmp_path: Path) -> None:
    path = tmp_path / "librispeech-lexicon.txt"
    path.write_text("A\tAH0\nA\tEY1\nREAD  R IY1 D\n\nREAD\tR EH1 D\n")
    entries = read_lexicon(path)
    assert [(e.word, e.units, e.line) for e in entries] == [
        ("A", ("AH0",), 1), ("A", ("EY1",), 2), ("READ", ("R", "IY1", "D"), 3), ("READ", ("R", "EH1", "D"), 5)]


def test_spelling_lexicon_from_word_lists(tmp_path: Path, lm: Path, caplog) -> None:
    units = set(TOKENS)
    out = build_spelling_lexicon(lm, units, tmp_path / "lexicon.txt")  # the ARPA's 1-grams
    assert out.read_text().splitlines() == sorted(f"{w}\t{' '.join(w)}" for w in
                                                   ("A", "BAT", "CAT", "FLEW", "MAT", "ON", "SAT", "THE"))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("CAT 12\nDON'T 3\nCAFÉ 1\n")  # a word-count file; É is not a unit
    with caplog.at_level(logging.WARNING):
        out = build_spelling_lexicon(vocab, units, tmp_path / "lexicon2.txt", on_oov="skip")
    assert out.read_text() == "CAT\tC A T\nDON'T\tD O N ' T\n"
    assert "left out 1 of 3" in caplog.text and "CAFÉ (line 3)" in caplog.text


# ---- bad input ------------------------------------------------------------------------------------

def test_lexicon_word_outside_the_units_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "lex.txt"
    path.write_text("CAT C A T\nCAFÉ C A F É\n")
    with pytest.raises(LexiconError, match=r"lex\.txt:2: word 'CAFÉ' is spelled with 'É', outside"):
        LexiconCTCDecoder(TOKENS, path, None)
    assert [e.word for e in check_units(read_lexicon(path), TOKENS, path, on_oov="skip")] == ["CAT"]
    path.write_text("CAT C A T\nDOG D O G |\n")  # fairseq's word separator is not one of our units
    with pytest.raises(LexiconError, match=r"lex\.txt:2: word 'DOG' is spelled with '\|'"):
        check_units(read_lexicon(path), TOKENS, path)


def test_bad_lexicon_files(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match=r"missing\.txt: no such lexicon file"):
        read_lexicon(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(LexiconError, match=r"empty\.txt: empty lexicon file"):
        read_lexicon(tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_text("CAT C A T\nDOG\n")
    with pytest.raises(LexiconError, match=r"bad\.txt:2: expected 'WORD UNIT1 UNIT2 \.\.\.', got 'DOG'"):
        read_lexicon(tmp_path / "bad.txt")
    (tmp_path / "vocab.txt").write_text("CAT\nDOG MANY WORDS\n")
    with pytest.raises(LexiconError, match=r"vocab\.txt:2: expected 'WORD' or 'WORD COUNT'"):
        read_words(tmp_path / "vocab.txt")
    assert spell([("DOG", 4)])[0].units == ("D", "O", "G")


def test_missing_lm_file(lexicon: Path, tmp_path: Path) -> None:
    with pytest.raises(ArpaError, match=r"4-gram\.arpa\.gz: no such language model file"):
        LexiconCTCDecoder(TOKENS, lexicon, tmp_path / "4-gram.arpa.gz")


GOOD = "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t-0.3\n-0.5\tA\t-0.2\n-0.3\t</s>\n\n" \
       "\\2-grams:\n-0.1\t<s> A\n\n\\end\\\n"


@pytest.mark.parametrize("text, where, what", [
    ("CAT C A T\nDOG D O G\n", r"bad\.arpa", r"not an ARPA language model: no '\\data\\' line"),
    (GOOD.replace("ngram 1=3", "ngram 1=4"), r"bad\.arpa:10", r"the header says 4 1-grams, the section has 3"),
    (GOOD.replace("-0.5\tA", "x0.5\tA"), r"bad\.arpa:7", r"not a number"),
    (GOOD.replace("-0.1\t<s> A", "-0.1\t<s>"), r"bad\.arpa:11", r"expected 'log10prob<TAB>2 word\(s\)'"),
    (GOOD.replace("ngram 2=1\n", "ngram 3=1\n"), r"bad\.arpa:3", r"orders 1, 2, \.\.\. in turn"),
    (GOOD.replace("\\end\\\n", ""), r"bad\.arpa:12", r"ends before '\\end\\'"),
    (GOOD.replace("\\2-grams:", "\\3-grams:"), r"bad\.arpa:10", r"expected '\\2-grams:'"),
])
def test_not_arpa_names_file_and_line(tmp_path: Path, lexicon: Path, text: str, where: str, what: str) -> None:
    path = tmp_path / "bad.arpa"
    path.write_text(GOOD)
    assert check_lm(path, full=True) == "arpa"
    path.write_text(text)
    with pytest.raises(ArpaError, match=rf"{where}: .*{what}"):
        check_lm(path, full=True)
    with pytest.raises(ArpaError, match=rf"{where}: .*{what}"):
        read_arpa(path)


def test_decoder_checks_the_lm_before_loading_it(tmp_path: Path, lexicon: Path) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text(GOOD.replace("ngram 1=3", "ngram 1=4"))  # found in the header + 1-gram pass
    with pytest.raises(ArpaError, match=r"lm\.arpa:10: the header says 4 1-grams"):
        LexiconCTCDecoder(TOKENS, lexicon, path)
    gz = tmp_path / "lm.arpa.gz"
    gz.write_text(GOOD)  # not gzipped
    with pytest.raises(ArpaError, match=r"lm\.arpa\.gz:1: unreadable"):
        LexiconCTCDecoder(TOKENS, lexicon, gz)
