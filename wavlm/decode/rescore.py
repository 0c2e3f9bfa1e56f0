"""N-best rescoring with a word-level Transformer LM (wavlm.tasks.lm, `data.units: word`).

The lexicon beam search (wavlm.decode.flashlight, flashlight-text's LexiconDecoder with the word 4-gram) returns
per utterance an N-best list of (words, total score, n-gram LM score). Each hypothesis gets a new total:

    acoustic  = total - ngram_lm_weight * ngram_lm_score - ngram_word_score * len(words)
    new total = acoustic + lm_weight * log P_LM(w_1 .. w_n </s>) + word_score * len(words)

and the best new total wins (ties: the earlier hypothesis in the list).

Score units. flashlight's KenLM wrapper passes KenLM's scores through unchanged, so `ngram_lm_score` (the sum
of the n-gram's word scores including </s>, unweighted) is a log10 probability, and the decoder's total is
CTC log-posteriors (natural log) + ngram_lm_weight * that log10 sum + ngram_word_score per word + sil_score per
frame spent on the word-boundary unit. `acoustic` above is thus the CTC score plus the decoder's silence scores
(exactly the CTC score with fairseq's sil_score 0), given the same ngram_lm_weight and ngram_word_score as the
decoding used; words the decoder emitted as <unk> got its unk_score instead of the word score (fairseq's
default unk_score is -inf: none are emitted). The Transformer LM's log-probability is in natural log, as
fairseq's FairseqLM hands it to the flashlight decoder; the new total has the form of fairseq's in-beam
Transformer-LM decoding (CTC + lmweight * log P_LM + wordscore * words), so its weights and search ranges
(examples/hubert/config/decode/infer_fsqlm.yaml: lmweight 2, wordscore -1; ax_sweep/transformer.yaml: lmweight
0..4, wordscore -5..5) carry over. The two LMs never mix: the n-gram's part is removed in its own units. Words
outside the LM's vocabulary score as its `<unk>`.

Why rescoring and not inside the beam: fairseq's wav2vec 2.0 / HuBERT decoding runs the Transformer LM
inside flashlight's beam through the decoder's Python LM interface: C++ asks for one (state, word) score at a
time, so the LM runs once per query, unbatched, from inside the CPU search. Rescoring the
4-gram beam's N-best keeps the beam search in C++ (CPU workers, as for the 4-gram alone) and scores all
hypotheses of many utterances in a few padded batches on a GPU or CPU. The price: the Transformer LM only
reorders what the 4-gram beam kept, so the N-best must be deep enough (the decoder's `nbest`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.common import read_task_checkpoint
from wavlm.tasks.lm import WordVocab, build_lm, pad, token_batches

log = logging.getLogger(__name__)

# (words, total score, n-gram LM score) of one hypothesis, as the lexicon decoder reports them
NBestEntry = tuple[Sequence[str], float, float]


@dataclass
class WordLM:
    """A word-level LM (espnet2's ESPnetLanguageModel around its TransformerLM) and its word list."""

    model: torch.nn.Module
    vocab: WordVocab
    device: torch.device
    max_tokens: int = 4096  # padded positions (words + 1) per scoring batch

    @torch.no_grad()
    def logprob(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """Natural-log probability of each sentence, `</s>` included: log P(w_1 .. w_n </s>) (float64 [N]).
        Sentences are scored in length-sorted padded batches of at most `max_tokens` positions."""
        ids = [self.vocab.encode(list(s)) for s in sentences]
        out = np.zeros(len(ids))
        for batch in token_batches([len(x) for x in ids], self.max_tokens):
            text, lengths = pad([ids[i] for i in batch])
            nll, _ = self.model.nll(text.to(self.device), lengths.to(self.device))
            out[batch] = -nll.sum(dim=1).double().cpu().numpy()
        return out


def load_word_lm(path: str, device: str | torch.device = "cpu", max_tokens: int = 4096) -> WordLM:
    """The word LM of a wavlm.bin.train_lm checkpoint trained with `data.units: word`, in eval mode."""
    state = read_task_checkpoint(path, "lm", "an LM checkpoint of wavlm.bin.train_lm")
    if state.get("units", "token") != "word":
        raise CheckpointError(f"{path}: an LM over the ASR model's token units; N-best rescoring needs a word LM "
                              "(train_lm with data.units=word)")
    vocab = WordVocab.from_tokens(list(state["tokens"]))
    model = build_lm(state["kind"], state["conf"], len(vocab))
    model.load_state_dict(state["model"])
    device = torch.device(device)
    log.info("%s: word LM over %d words on %s", path, len(vocab) - 3, device)
    return WordLM(model.to(device).eval(), vocab, device, max_tokens)


def rescored_scores(nbest: Sequence[NBestEntry], lm_logprobs: Sequence[float], lm_weight: float,
                    word_score: float, ngram_lm_weight: float, ngram_word_score: float) -> np.ndarray:
    """The new totals of `nbest` given each hypothesis' LM log-probability (see the module docstring); cheap,
    so a weight search computes `lm_logprobs` once and calls this for every grid point."""
    n_words = np.array([len(w) for w, _, _ in nbest], dtype=np.float64)
    total = np.array([t for _, t, _ in nbest], dtype=np.float64)
    ngram = np.array([s for _, _, s in nbest], dtype=np.float64)
    acoustic = total - ngram_lm_weight * ngram - ngram_word_score * n_words
    return acoustic + lm_weight * np.asarray(lm_logprobs, dtype=np.float64) + word_score * n_words


def nbest_logprobs(nbests: Mapping[str, Sequence[NBestEntry]], lm: WordLM) -> dict[str, np.ndarray]:
    """The LM log-probability of every hypothesis of every utterance, each distinct sentence scored once."""
    sentences = list(dict.fromkeys(tuple(w) for nbest in nbests.values() for w, _, _ in nbest))
    scores = dict(zip(sentences, lm.logprob(sentences), strict=True))
    return {utt: np.array([scores[tuple(w)] for w, _, _ in nbest]) for utt, nbest in nbests.items()}


def rescore_nbests(nbests: Mapping[str, Sequence[NBestEntry]], lm: WordLM, lm_weight: float, word_score: float,
                   ngram_lm_weight: float, ngram_word_score: float) -> dict[str, list[str]]:
    """The best words of each utterance's N-best list (utterance id -> hypotheses) after rescoring."""
    empty = [utt for utt, nbest in nbests.items() if not nbest]
    if empty:
        raise ValueError(f"utterance {empty[0]}: empty N-best list ({len(empty)} utterances without hypotheses)")
    logprobs = nbest_logprobs(nbests, lm)
    best = {}
    for utt, nbest in nbests.items():
        scores = rescored_scores(nbest, logprobs[utt], lm_weight, word_score, ngram_lm_weight, ngram_word_score)
        best[utt] = list(nbest[int(np.argmax(scores))][0])
    return best


def rescore_nbest(nbest: Sequence[NBestEntry], lm: WordLM, lm_weight: float, word_score: float,
                  ngram_lm_weight: float, ngram_word_score: float) -> list[str]:
    """The best words of one utterance's N-best list after rescoring (see rescore_nbests)."""
    return rescore_nbests({"utterance": nbest}, lm, lm_weight, word_score, ngram_lm_weight, ngram_word_score)[
        "utterance"]
