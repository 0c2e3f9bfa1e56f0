"""CTC beam search over words with flashlight-text (the decoder fairseq's wav2vec 2.0 / HuBERT / WavLM
recipes use): a lexicon-constrained search with a KenLM n-gram (ARPA or KenLM binary), or a lexicon-free
search over letters and word boundaries.

Our units (wavlm.data.tokenizer): `<blank>` (id 0, CTC blank), sentencepiece pieces with `▁` marking the
start of each word, `<sos/eos>` last. `▁` is the decoder's silence/word-separator token (fairseq's `|`):
with a lexicon, a word is its letters (`CAT` -> C A T, inserted in flashlight's trie) and `▁` is taken
between words; lexicon-free, `▁` splits the letter string into words. `<sos/eos>` and `<unk>` are never
emitted. LM scores are KenLM's log10 probabilities, weighted by lm_weight against the natural-log CTC scores,
as in fairseq.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flashlight.lib.text.decoder import (
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    LexiconFreeDecoder,
    LexiconFreeDecoderOptions,
    SmearingMode,
    Trie,
    ZeroLM,
)
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from wavlm.data.tokenizer import BLANK, SOS_EOS
from wavlm.decode.lexicon import check_units, read_lexicon
from wavlm.decode.ngram import BOS, EOS, UNK, arpa_unigrams, check_lm

log = logging.getLogger(__name__)

BOUNDARY = "▁"
_NEVER = -1e30  # log-probability given to units that must not be emitted

# Defaults of fairseq's flashlight decoding for wav2vec 2.0 / HuBERT, which WavLM's paper follows:
# beam 500, beamthreshold 100, lmweight 2, wordscore -1, silweight 0 from
# fairseq examples/hubert/config/decode/infer_kenlm.yaml; unkweight -inf and nbest 1 from
# fairseq examples/speech_recognition/new/decoders/decoder_config.py (FlashlightDecoderConfig).
# lm_weight and word_score are then tuned on the dev sets (the paper, and fairseq's ax_sweep/ngram.yaml).
DEFAULTS = dict(beam_size=500, beam_threshold=100.0, lm_weight=2.0, word_score=-1.0, unk_score=-math.inf,
                sil_score=0.0, nbest=1)


class DecoderError(ValueError):
    pass


@dataclass
class Hypothesis:
    words: list[str]
    score: float  # total: CTC + lm_weight * LM + word_score * words + sil_score * boundaries
    lm_score: float  # the LM's own score (log10, unweighted); 0 without an LM
    am_score: float  # the CTC log-probability of the alignment


class LexiconCTCDecoder:
    """CTC beam search with flashlight-text, called on one utterance's [T, V] float32 log-probabilities.

    tokens: the model's units in id order (Tokenizer.tokens: `<blank>`, pieces with `▁`, `<sos/eos>`).
    lexicon: a `WORD L E T T E R S` file (see wavlm.decode.lexicon); words spelled outside the units are an
        error naming the line (on_oov="error") or left out (on_oov="skip"). None: lexicon-free decoding.
    lm: with a lexicon, a word n-gram (ARPA, .arpa.gz, or KenLM binary); lexicon-free, an n-gram over the
        units themselves; None: no LM (the word score and the lexicon still apply).
    beam_size_token: how many of each frame's best units are tried (None: all).
    nbest: the number of distinct word sequences returned, best first.
    """

    def __init__(self, tokens: Sequence[str], lexicon: str | os.PathLike | None = None,
                 lm: str | os.PathLike | None = None, *, beam_size: int = DEFAULTS["beam_size"],
                 beam_size_token: int | None = None, beam_threshold: float = DEFAULTS["beam_threshold"],
                 lm_weight: float = DEFAULTS["lm_weight"], word_score: float = DEFAULTS["word_score"],
                 unk_score: float = DEFAULTS["unk_score"], sil_score: float = DEFAULTS["sil_score"],
                 nbest: int = DEFAULTS["nbest"], on_oov: str = "error") -> None:
        self.tokens = list(tokens)
        for name in (BLANK, BOUNDARY):
            if name not in self.tokens:
                raise DecoderError(f"the units have no {name!r}; expected wavlm.data.tokenizer's token list")
        if nbest < 1 or beam_size < 1:
            raise DecoderError(f"nbest and beam_size must be positive, got {nbest} and {beam_size}")
        self.blank, self.sil = self.tokens.index(BLANK), self.tokens.index(BOUNDARY)
        self.nbest = nbest
        self.masked = [i for i, t in enumerate(self.tokens) if t in (SOS_EOS, UNK)]
        self.lexicon_free = lexicon is None
        n_tok = len(self.tokens)
        common = dict(beam_size=beam_size, beam_size_token=min(beam_size_token or n_tok, n_tok),
                      beam_threshold=beam_threshold, lm_weight=lm_weight if lm is not None else 0.0,
                      sil_score=sil_score, log_add=False, criterion_type=CriterionType.CTC)
        kind = check_lm(lm) if lm is not None else None
        if self.lexicon_free:
            if lm is not None:
                if kind == "arpa":
                    self._check_unit_lm(lm)
                self.lm = KenLM(str(lm), Dictionary(self.tokens))
            else:
                self.lm = ZeroLM()
            self.decoder = LexiconFreeDecoder(LexiconFreeDecoderOptions(**common), self.lm, self.sil, self.blank,
                                              [])
            log.info("lexicon-free CTC beam search over %d units, LM %s", n_tok, lm or "none")
            return
        entries = check_units(read_lexicon(lexicon), set(self.tokens) - {BLANK, SOS_EOS, UNK, BOUNDARY},
                              lexicon, on_oov)
        words = sorted({e.word for e in entries} | {UNK})
        self.word_dict = Dictionary(words)
        self.word_dict.set_default_index(self.word_dict.get_index(UNK))
        self.lm = KenLM(str(lm), self.word_dict) if lm is not None else ZeroLM()
        trie = Trie(n_tok, self.sil)
        start = self.lm.start(False)
        unit_id = {t: i for i, t in enumerate(self.tokens)}
        for word, units in dict.fromkeys((e.word, e.units) for e in entries):  # exact duplicates once
            idx = self.word_dict.get_index(word)
            trie.insert([unit_id[u] for u in units], idx, self.lm.score(start, idx)[1])  # smeared unigram scores
        trie.smear(SmearingMode.MAX)
        self.trie = trie  # the decoder holds a reference; keep the trie alive with it
        self._common, self._unk_score = common, unk_score
        self.reweight(common["lm_weight"], word_score)
        log.info("lexicon CTC beam search: %d words (%d spellings) from %s, LM %s", len(words) - 1,
                 len(entries), lexicon, lm or "none")

    def reweight(self, lm_weight: float, word_score: float) -> None:
        """New LM weight and word score, keeping the loaded LM and the lexicon trie (what a weight search
        changes; loading the official 4-gram takes minutes)."""
        if self.lexicon_free:
            raise DecoderError("reweight is for the lexicon decoder")
        opts = LexiconDecoderOptions(word_score=word_score, unk_score=self._unk_score,
                                     **{**self._common, "lm_weight": lm_weight})
        self.decoder = LexiconDecoder(opts, self.trie, self.lm, self.sil, self.blank, self.word_dict.get_index(UNK),
                                      [], False)

    def _check_unit_lm(self, lm: str | os.PathLike) -> None:
        """Lexicon-free search scores every unit with the LM: a word LM would score them all as <unk>."""
        outside = sorted({w for w, _ in arpa_unigrams(lm)} - set(self.tokens) - {BOS, EOS, UNK})
        if outside:
            raise DecoderError(f"{lm}: lexicon-free decoding needs an LM over the units, but its 1-grams include "
                               f"{len(outside)} others ({' '.join(outside[:5])} ...); give a lexicon for a word LM")

    def __call__(self, logprobs: np.ndarray) -> list[Hypothesis]:
        """The N-best word sequences (distinct, best first) for [T, V] CTC log-probabilities."""
        x = np.array(logprobs, dtype=np.float32, order="C", copy=True)
        if x.ndim != 2 or x.shape[1] != len(self.tokens):
            raise DecoderError(f"expected log-probabilities [T, {len(self.tokens)}], got shape {list(x.shape)}")
        if np.isnan(x).any() or (x > 1e-3).any():
            raise DecoderError("log-probabilities contain NaN or values above 0 (not a log-softmax output)")
        np.maximum(x, _NEVER, out=x)  # -inf (a masked unit) as a finite, never-chosen score
        x[:, self.masked] = _NEVER
        results = self.decoder.decode(x.ctypes.data, x.shape[0], x.shape[1])
        hyps: dict[tuple[str, ...], Hypothesis] = {}
        for r in sorted(results, key=lambda r: -r.score):
            words = tuple(self._words(r))
            if words not in hyps:
                hyps[words] = Hypothesis(list(words), r.score, r.lmScore, r.emittingModelScore)
                if len(hyps) == self.nbest:
                    break
        return list(hyps.values())

    def _words(self, r) -> list[str]:
        if not self.lexicon_free:
            return [self.word_dict.get_entry(w) for w in r.words if w >= 0]
        ids = [t for i, t in enumerate(r.tokens) if t >= 0 and (i == 0 or t != r.tokens[i - 1])]
        return "".join(self.tokens[t] for t in ids if t != self.blank).replace(BOUNDARY, " ").split()
