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
        """[B, T, V] log posteriors and [B] frame lengths (inference)."""
        out = self.encode(wav, lengths)
        return self.ctc.log_softmax(out.hidden), out.lengths

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


class CTCBeamSearch:
    """Prefix beam search over CTC posteriors with optional LM shallow fusion: espnet's BatchBeamSearch
    with its CTCPrefixScorer (label-synchronous; there is no attention decoder, so every token is
    scored by the CTC prefix scorer, no pre-beam), the LM and a length bonus.

    score(y) = log p_ctc(y | x) + lm_weight * log p_lm(y) + length_bonus * |y|
    """

    def __init__(self, ctc: nn.Module, vocab_size: int, eos: int, beam_size: int, lm: nn.Module | None = None,
                 lm_weight: float = 0.5, length_bonus: float = 0.0):
        from espnet.nets.batch_beam_search import BatchBeamSearch
        from espnet.nets.scorers.ctc import CTCPrefixScorer
        from espnet.nets.scorers.length_bonus import LengthBonus

        scorers: dict[str, nn.Module] = {"ctc": CTCPrefixScorer(ctc, eos), "length_bonus": LengthBonus(vocab_size)}
        weights = {"ctc": 1.0, "length_bonus": length_bonus}
        if lm is not None:
            scorers["lm"], weights["lm"] = lm, lm_weight
        self.search = BatchBeamSearch(scorers=scorers, weights=weights, beam_size=beam_size, vocab_size=vocab_size,
                                      sos=eos, eos=eos, pre_beam_score_key=None).eval()

    @torch.no_grad()
    def __call__(self, hidden: Tensor) -> list[int]:
        """hidden: [T, D] encoder output of one utterance (what the CTC projection takes) -> best token ids."""
        hyps = self.search(x=hidden, maxlenratio=0.0, minlenratio=0.0)
        return hyps[0].yseq.tolist()[1:-1] if hyps else []
