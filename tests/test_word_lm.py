"""Word-level LM (wavlm.tasks.lm, data.units word) and N-best rescoring with it (wavlm.decode.rescore)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from wavlm.config import ConfigError, from_dict, load
from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.lm import LmConfig, LmTask, WordVocab, load_lm

ROOT = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = ROOT / "egs/librispeech/asr1/conf/debug/lm_word.yaml"
SEEN = "THE CAT SAT ON THE MAT".split()
SHUFFLED = "MAT THE ON SAT CAT THE".split()


# ---- the word list -------------------------------------------------------------------------------------------

def test_word_vocab_is_the_top_n_words_with_ties_in_code_point_order():
    counts = Counter("b a c a b d e e Z <unk> <unk> <unk> <sos/eos>".split())
    vocab = WordVocab.from_counts(counts, 4)
    # a, b, e twice (alphabetical), then c, d, Z once: Z sorts before lower case; specials never become words
    assert vocab.tokens == ["<blank>", "<unk>", "a", "b", "e", "Z", "<sos/eos>"]
    assert (vocab.blank, vocab.unk, vocab.eos, len(vocab)) == (0, 1, 6, 7)
    assert vocab.encode("a d Z <unk> <sos/eos> <blank>") == [2, 1, 5, 1, 1, 1]  # out of the list: <unk>
    assert vocab.encode(["e", "b"]) == [4, 3]
    assert WordVocab.from_counts(counts, 100).tokens[2:-1] == ["a", "b", "e", "Z", "c", "d"]  # all there are
    assert WordVocab.from_tokens(vocab.tokens).tokens == vocab.tokens
    with pytest.raises(ValueError, match="not a word token list"):
        WordVocab.from_tokens(["a", "b"])


def _config(tmp_path: Path, train: str, **data) -> LmConfig:
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "valid.txt").write_text("u1 c a x\n")
    return from_dict(LmConfig, {"conf": {"embed_unit": 8, "att_unit": 8, "head": 1, "unit": 8, "layer": 1},
                                "data": {"units": "word", "vocab_size": 3, "train": [str(tmp_path / "train.txt")],
                                         "valid": [f"kaldi:{tmp_path / 'valid.txt'}"], **data}})


def test_word_task_writes_its_list_and_maps_oov_words_to_unk(tmp_path):
    cfg = _config(tmp_path, "a b c\nc a a\nd b e\nf\n")
    task = LmTask(cfg, exp_dir=tmp_path / "exp")
    want = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]  # a 3, b 2, c 2 (b before c), d/e/f once
    assert task.tokenizer.tokens == want
    assert (tmp_path / "exp/tokens.txt").read_text().split("\n") == [*want, ""]
    assert [s.tolist() for s in task.train_ids] == [[2, 3, 4], [4, 2, 2], [1, 3, 1], [1]]
    assert [s.tolist() for s in task.valid_ids] == [[4, 2, 1]]  # the Kaldi text's utterance id dropped
    state = task.model_state(task.build_model())
    assert state["units"] == "word" and state["tokens"] == want
    # resuming in that exp dir with another word list is an error before anything is overwritten
    with pytest.raises(ValueError, match="another word list.*new --exp_dir"):
        LmTask(_config(tmp_path, "x y z\n"), exp_dir=tmp_path / "exp")
    assert (tmp_path / "exp/tokens.txt").read_text().split("\n") == [*want, ""]


@pytest.mark.parametrize("override, match", [
    ("data.units=words", "data.units must be one of"),
    ("data.vocab_size=0", "needs data.vocab_size > 0"),
    ("data.tokenizer=exp/units", "data.tokenizer is for data.units token"),
])
def test_word_units_config_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load(LmConfig, DEBUG_CONFIG, [override])


def test_token_units_reject_a_vocab_size():
    with pytest.raises(ConfigError, match="data.vocab_size is for data.units word"):
        load(LmConfig, ROOT / "egs/librispeech/asr1/conf/lm_transformer.yaml", ["data.vocab_size=10"])


# ---- a word LM trained by the real trainer -------------------------------------------------------------------

@pytest.fixture(scope="module")
def word_lm_exp(tmp_path_factory) -> Path:
    from wavlm.bin.train_lm import main

    tmp = tmp_path_factory.mktemp("word_lm")
    (tmp / "lm.txt").write_text((" ".join(SEEN) + "\n") * 40 + "A DOG RAN IN THE PARK\n" * 40)
    (tmp / "valid").write_text("v1 THE CAT SAT ON THE MAT\nv2 A DOG RAN IN THE PARK\n")
    rc = main(["--config", str(DEBUG_CONFIG), "--exp_dir", str(tmp / "exp"), f"data.train=[{tmp / 'lm.txt'}]",
               f"data.valid=[kaldi:{tmp / 'valid'}]", "trainer.max_updates=60", "trainer.save_interval_updates=60",
               "trainer.valid_interval_updates=60", "trainer.log_interval=20"])
    assert rc == 0
    return tmp / "exp"


def test_trained_word_lm_prefers_a_seen_sentence_to_its_shuffle(word_lm_exp):
    from wavlm.decode.rescore import load_word_lm

    lm = load_word_lm(str(word_lm_exp / "checkpoint_best.pt"))
    seen, shuffled, unseen_word = lm.logprob([SEEN, SHUFFLED, ["THE", "ZEBRA", "SAT"]])
    assert seen > shuffled + 5.0, (seen, shuffled)
    assert seen > np.log(0.1)  # half the training text is this sentence (60 updates: about log 0.35)
    assert lm.vocab.encode(["ZEBRA"]) == [lm.vocab.unk] and np.isfinite(unseen_word)
    # the checkpoint's word list is the one written to the exp dir
    assert (word_lm_exp / "tokens.txt").read_text().splitlines() == lm.vocab.tokens
    assert len(lm.vocab) == 3 + 10  # 10 distinct words (fewer than data.vocab_size), <blank>, <unk>, <sos/eos>


def test_batched_scores_equal_one_at_a_time_and_the_model_output(word_lm_exp):
    from wavlm.decode.rescore import load_word_lm

    lm = load_word_lm(str(word_lm_exp / "checkpoint_best.pt"), max_tokens=1000)
    sentences = [SEEN, ["A"], [], SHUFFLED, ["A", "DOG", "RAN"], ["THE", "ZEBRA"]]
    batched = lm.logprob(sentences)
    lm.max_tokens = 1  # one sentence per batch
    assert np.allclose(batched, lm.logprob(sentences), atol=1e-4)
    # independent of espnet's nll(): the LM's next-word distributions after <sos> along the sentence
    ids = lm.vocab.encode(SEEN)
    with torch.no_grad():
        logits, _ = lm.model.lm(torch.tensor([[lm.vocab.eos, *ids]]), None)
    logp = torch.log_softmax(logits[0], dim=-1)
    manual = sum(float(logp[i, t]) for i, t in enumerate([*ids, lm.vocab.eos]))
    assert batched[0] == pytest.approx(manual, abs=1e-4)


def test_unit_kinds_are_not_mixed_up(word_lm_exp, tmp_path):
    from wavlm.decode.rescore import load_word_lm

    with pytest.raises(CheckpointError, match="word-level LM.*rescore"):
        load_lm(str(word_lm_exp / "checkpoint_best.pt"), ["<blank>", "a", "<sos/eos>"])
    token_lm = tmp_path / "token_lm.pt"
    torch.save({"task": "lm", "kind": "transformer", "conf": {}, "tokens": ["<blank>", "a", "<sos/eos>"],
                "model": {}}, token_lm)  # a checkpoint from before word units: token units
    with pytest.raises(CheckpointError, match="needs a word LM"):
        load_word_lm(str(token_lm))


# ---- rescoring ---------------------------------------------------------------------------------------------------

class TableLM:
    """A stand-in word LM with fixed sentence log-probabilities."""

    def __init__(self, table: dict[str, float]):
        self.table, self.calls = table, []

    def logprob(self, sentences):
        self.calls.append(len(sentences))
        return np.array([self.table[" ".join(s)] for s in sentences])


def test_rescoring_formula_removes_the_ngram_and_adds_the_lm():
    from wavlm.decode.rescore import rescore_nbest, rescore_nbests, rescored_scores

    # decoded with ngram_lm_weight 2, ngram_word_score -1: total = acoustic + 2 * ngram + (-1) * words
    nbest = [(["A"], -5.0 + 2 * -2.0 - 1, -2.0), (["B", "C"], -6.0 + 2 * -1.5 - 2, -1.5)]
    lm = TableLM({"A": -5.0, "B C": -1.0})
    got = rescored_scores(nbest, [-5.0, -1.0], lm_weight=1.0, word_score=0.5, ngram_lm_weight=2.0,
                          ngram_word_score=-1.0)
    assert got.tolist() == pytest.approx([-5.0 - 5.0 + 0.5, -6.0 - 1.0 + 1.0])
    args = {"ngram_lm_weight": 2.0, "ngram_word_score": -1.0}
    assert rescore_nbest(nbest, lm, lm_weight=1.0, word_score=0.0, **args) == ["B", "C"]
    assert rescore_nbest(nbest, lm, lm_weight=0.0, word_score=0.0, **args) == ["A"]  # the acoustic best
    # equal new totals: the earlier hypothesis
    assert rescore_nbest(nbest, lm, lm_weight=0.25, word_score=0.0, **args) == ["A"]
    # many utterances: each distinct sentence scored once, in one call
    lm.calls.clear()
    best = rescore_nbests({"u1": nbest, "u2": nbest[::-1]}, lm, lm_weight=1.0, word_score=0.0, **args)
    assert best == {"u1": ["B", "C"], "u2": ["B", "C"]} and lm.calls == [2]
    with pytest.raises(ValueError, match="utterance u3: empty N-best"):
        rescore_nbests({"u1": nbest, "u3": []}, lm, 1.0, 0.0, **args)


def test_rescoring_picks_what_the_trained_lm_prefers_when_acoustics_are_close(word_lm_exp):
    from wavlm.decode.rescore import load_word_lm, rescore_nbest

    lm = load_word_lm(str(word_lm_exp / "checkpoint_best.pt"))
    # the shuffle is 0.5 nats better acoustically and better by the 4-gram; the 4-gram's part is removed
    ngram = {"seen": -12.0, "shuffled": -9.0}
    nbest = [(SHUFFLED, -20.0 + 2 * ngram["shuffled"] - 6, ngram["shuffled"]),
             (SEEN, -20.5 + 2 * ngram["seen"] - 6, ngram["seen"])]
    args = {"word_score": 0.0, "ngram_lm_weight": 2.0, "ngram_word_score": -1.0}
    assert rescore_nbest(nbest, lm, lm_weight=1.0, **args) == SEEN
    assert rescore_nbest(nbest, lm, lm_weight=0.0, **args) == SHUFFLED
