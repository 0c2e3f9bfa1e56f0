"""CTC decoders of one utterance's log posteriors, and the interface every decoder of
`wavlm.bin.asr_decode` follows:

    decoder(log_probs) -> str                         the best word sequence
    decoder.nbest(log_probs, n) -> [(words, score)]   up to n hypotheses, best first (N-best consumers)

`log_probs` is float32 numpy [T, V]: one row per frame, columns as the units of tokens.txt (0 = <blank>,
last = <sos/eos>), rows log-softmax normalised (what `wavlm.decode.logprobs` stores). A decoder holds its
own options and models; it is built once per job and called utterance by utterance (decoding jobs are
single-threaded processes, parallel over `$cmd JOB=1:$nj`).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from wavlm.data.tokenizer import Tokenizer
from wavlm.models.ctc import CTCBeamSearch, ctc_greedy


class CtcDecoder(Protocol):
    def __call__(self, log_probs: np.ndarray) -> str: ...

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float]]: ...


class GreedyDecoder:
    """Best path: arg max per frame, repeats merged, blanks dropped. Its one hypothesis scores the sum of
    the frames' best log posteriors (the best path's log probability)."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok

    def ids(self, log_probs: np.ndarray) -> list[int]:
        lp = torch.tensor(log_probs)  # a copy: arrays read from an ark are read-only
        return ctc_greedy(lp[None], torch.tensor([lp.shape[0]]), blank=self.tok.blank)[0]

    def __call__(self, log_probs: np.ndarray) -> str:
        return self.tok.decode(self.ids(log_probs))

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float]]:
        return [(self(log_probs), float(log_probs.max(axis=1).sum()))]


class BeamSearchDecoder:
    """espnet's CTC prefix beam search with an optional token LM (shallow fusion) and a length bonus
    (`wavlm.models.ctc.CTCBeamSearch`); score = log p_ctc + lm_weight log p_lm + length_bonus |y|."""

    def __init__(self, tok: Tokenizer, beam_size: int, lm: torch.nn.Module | None = None, lm_weight: float = 0.5,
                 length_bonus: float = 0.0):
        self.tok = tok
        self.search = CTCBeamSearch(len(tok), tok.eos, beam_size, lm, lm_weight, length_bonus)

    def __call__(self, log_probs: np.ndarray) -> str:
        return self.tok.decode(self.search(torch.tensor(log_probs)))

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float]]:
        return [(self.tok.decode(ids), score) for ids, score in self.search.nbest(torch.tensor(log_probs))[:n]]


class LexiconDecoder:
    """flashlight-text's lexicon-constrained CTC beam search with a word n-gram (KenLM), as fairseq decodes
    wav2vec 2.0 / HuBERT (`wavlm.decode.flashlight.LexiconCTCDecoder`), or lexicon-free without a lexicon;
    optionally its N-best rescored with a word-level Transformer LM (`wavlm.decode.rescore`):
    score = CTC + kenlm_weight * log10 p_ngram + word_score * |words| (first pass); rescoring replaces the
    n-gram part by word_lm_weight * ln p_transformer + word_lm_word_score * |words|."""

    def __init__(self, tok: Tokenizer, lexicon: str | None, kenlm: str | None, beam_size: int,
                 beam_threshold: float, kenlm_weight: float, word_score: float, unk_score: float, sil_score: float,
                 nbest: int = 1, word_lm: object | None = None, word_lm_weight: float = 0.0,
                 word_lm_word_score: float = 0.0):
        from wavlm.decode.flashlight import LexiconCTCDecoder

        self.search = LexiconCTCDecoder(tok.tokens, lexicon, kenlm, beam_size=beam_size,
                                        beam_threshold=beam_threshold, lm_weight=kenlm_weight, word_score=word_score,
                                        unk_score=unk_score, sil_score=sil_score, nbest=nbest)
        self.has_kenlm = bool(kenlm)
        self.kenlm_weight, self.word_score = (kenlm_weight if kenlm else 0.0), word_score
        self.word_lm, self.word_lm_weight, self.word_lm_word_score = word_lm, word_lm_weight, word_lm_word_score

    def reweight(self, kenlm_weight: float, word_score: float) -> None:
        """New first-pass weights without reloading the n-gram and the lexicon (for weight tuning)."""
        self.search.reweight(kenlm_weight, word_score)  # without an n-gram its scores are 0: the weight is moot
        self.kenlm_weight, self.word_score = (kenlm_weight if self.has_kenlm else 0.0), word_score

    def __call__(self, log_probs: np.ndarray) -> str:
        return self.nbest(log_probs, 1)[0][0]

    def nbest(self, log_probs: np.ndarray, n: int) -> list[tuple[str, float]]:
        hyps = self.search(log_probs)
        if not hyps:
            return [("", float("-inf"))]
        scores = [h.score for h in hyps]
        if self.word_lm is not None:
            from wavlm.decode.rescore import rescored_scores

            entries = [(h.words, h.score, h.lm_score) for h in hyps]
            lm = self.word_lm.logprob([h.words for h in hyps])
            scores = list(rescored_scores(entries, lm, self.word_lm_weight, self.word_lm_word_score,
                                          self.kenlm_weight, self.word_score))
        order = sorted(range(len(hyps)), key=lambda i: -scores[i])  # stable: ties keep the beam's order
        return [(" ".join(hyps[i].words), float(scores[i])) for i in order[:n]]
