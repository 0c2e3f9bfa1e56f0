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
