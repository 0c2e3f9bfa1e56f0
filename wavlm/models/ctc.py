"""WavLM + dropout + linear projection + CTC (espnet2's CTC module): the ASR fine-tuning model.

The encoder (`self.wavlm`) keeps the released key names, so an ASR checkpoint's `model` entry still loads
in Microsoft's code; the CTC projection (`ctc.ctc_lo`) is stored beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from wavlm.models.wavlm import WavLM


@dataclass
class CTCOutput:
    hidden: Tensor  # [B, T, D] final encoder states (after the final dropout)
    lengths: Tensor  # [B] valid frames


class WavLMForCTC(nn.Module):
    def __init__(self, wavlm: WavLM, vocab_size: int, final_dropout: float = 0.0):
        from espnet2.asr.ctc import CTC

        super().__init__()
        self.wavlm = wavlm
        self.final_dropout = nn.Dropout(final_dropout)
        # reduce=False: per-utterance losses, so the task decides the normalisation (fairseq's sentence_avg)
        self.ctc = CTC(odim=vocab_size, encoder_output_size=wavlm.embed_dim, reduce=False, zero_infinity=True)

    def encode(self, wav: Tensor, lengths: Tensor | None, mask: bool = False) -> CTCOutput:
        """Final hidden states; with `mask`, time/channel masking as configured (fine-tuning SpecAugment)."""
        out = self.wavlm(wav, lengths, mask=mask and self.training)
        return CTCOutput(self.final_dropout(out.hidden_states[-1]), out.lengths)

    def log_probs(self, wav: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """[B, T, V] log posteriors and [B] frame lengths of a padded batch as the released code computes
        them (the first GroupNorm of a Base model sees the padding; see `utterance_log_probs`)."""
        out = self.encode(wav, lengths)
        return self.ctc.log_softmax(out.hidden), out.lengths

    def utterance_log_probs(self, wav: Tensor, lengths: Tensor) -> list[Tensor]:
        """Log posteriors [T_i, V] of each utterance of a padded batch (wav [B, S], lengths [B] samples),
        equal up to float rounding to what each utterance gives alone (inference).

        In a padded batch the first GroupNorm of the "default" (Base) extractor would take its per-channel
        statistics over the padded length (`log_probs`, as Microsoft's and fairseq's code do); here they are
        computed over each utterance's own samples and passed in, so the result does not depend on what
        else is in the batch. The waveform normalisation (Large) is per utterance either way. Measured with
        a randomly initialised Base-size model (conf/model/base.yaml, seed 0, 32 units) on four 2-3.6 s
        espeak utterances, each padded by 10 % (50 %) of its length: the released behaviour moves the log
        posteriors by a relative RMS ||batched - alone|| / ||alone|| of 4.7e-3 (2.0e-2) and changes the
        arg max of 2.7 % (12 %) of the frames (random weights give flat posteriors, hence near ties; a
        trained model's peaky posteriors should flip far fewer); this function: 1.5e-7, no arg max changed.
        """
        enc = self.wavlm
        if enc.cfg.normalize:  # per utterance over its valid samples (padding stays 0), then not again
            wav = enc.normalize_waveform(wav, lengths)
        stats = None
        per_utt = [enc.feature_extractor.first_norm_stats(wav[i, :n]) for i, n in enumerate(lengths.tolist())]
        if per_utt[0] is not None:
            stats = (torch.cat([s[0] for s in per_utt]), torch.cat([s[1] for s in per_utt]))
        out = enc.extract_features(wav, lengths, normalize=False, norm_stats=stats)
        logp = self.ctc.log_softmax(self.final_dropout(out.hidden_states[-1]))
        return [logp[i, :n] for i, n in enumerate(out.lengths.tolist())]

    def forward(self, wav: Tensor, lengths: Tensor | None, targets: Tensor, target_lengths: Tensor,
                frozen: bool = False) -> Tensor:
        """Training step: per-utterance CTC losses [B] with masking; `frozen` keeps the encoder out of the
        graph (only the CTC projection learns). Training calls this forward (through DDP when distributed)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            out = self.encode(wav, lengths, mask=True)
        if frozen:
            out = CTCOutput(out.hidden.detach(), out.lengths)
        return self.ctc_losses(out, targets, target_lengths)

    def ctc_losses(self, out: CTCOutput, targets: Tensor, target_lengths: Tensor) -> Tensor:
        """Per-utterance CTC losses [B] of encoder output `out` (targets padded with -1)."""
        # espnet2's CTC with reduce=False returns the per-utterance losses divided by the batch size
        return self.ctc(out.hidden, out.lengths, targets, target_lengths) * out.hidden.shape[0]

    def head_state(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.ctc.state_dict().items()}


def ctc_greedy(log_probs: Tensor, lengths: Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = log_probs.argmax(-1).cpu()
    hyps = []
    for b, n in enumerate(lengths.tolist()):
        seq = torch.unique_consecutive(best[b, :n]).tolist()
        hyps.append([t for t in seq if t != blank])
    return hyps


class _Identity(nn.Module):
    """espnet's CTCPrefixScorer calls `ctc.log_softmax(x)`; the beam search is given log posteriors."""

    def log_softmax(self, x: Tensor) -> Tensor:
        return x


class CTCBeamSearch:
    """Prefix beam search over CTC log posteriors with optional LM shallow fusion: espnet's BatchBeamSearch
    with its CTCPrefixScorer (label-synchronous; there is no attention decoder, so every token is scored
    by the CTC prefix scorer, no pre-beam), the LM and a length bonus. It takes the [T, V] log posteriors
    (e.g. read from a `wavlm.bin.ctc_logprobs` dump), not the encoder output, so the encoder runs once,
    batched, elsewhere.

    score(y) = log p_ctc(y | x) + lm_weight * log p_lm(y) + length_bonus * |y|
    """

    def __init__(self, vocab_size: int, eos: int, beam_size: int, lm: nn.Module | None = None,
                 lm_weight: float = 0.5, length_bonus: float = 0.0):
        from espnet.nets.batch_beam_search import BatchBeamSearch
        from espnet.nets.scorers.ctc import CTCPrefixScorer
        from espnet.nets.scorers.length_bonus import LengthBonus

        scorers: dict[str, nn.Module] = {"ctc": CTCPrefixScorer(_Identity(), eos),
                                         "length_bonus": LengthBonus(vocab_size)}
        weights = {"ctc": 1.0, "length_bonus": length_bonus}
        if lm is not None:
            scorers["lm"], weights["lm"] = lm, lm_weight
        self.vocab_size = vocab_size
        self.search = BatchBeamSearch(scorers=scorers, weights=weights, beam_size=beam_size, vocab_size=vocab_size,
                                      sos=eos, eos=eos, pre_beam_score_key=None).eval()

    @torch.no_grad()
    def nbest(self, log_probs: Tensor) -> list[tuple[list[int], float]]:
        """log_probs: [T, V] of one utterance -> (token ids, total score) of the final hypotheses, best first
        (at most beam_size of them)."""
        if log_probs.dim() != 2 or log_probs.shape[1] != self.vocab_size:
            raise ValueError(f"expected log posteriors [T, {self.vocab_size}], got {tuple(log_probs.shape)}")
        hyps = self.search(x=log_probs, maxlenratio=0.0, minlenratio=0.0)
        return [(h.yseq.tolist()[1:-1], float(h.score)) for h in hyps]

    def __call__(self, log_probs: Tensor) -> list[int]:
        """log_probs: [T, V] of one utterance -> best token ids."""
        hyps = self.nbest(log_probs)
        return hyps[0][0] if hyps else []
