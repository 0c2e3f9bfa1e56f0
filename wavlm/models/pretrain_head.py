"""WavLM with the HuBERT-style masked-prediction head used for pre-training.

The encoder (`self.wavlm`) keeps the released checkpoints' key names; the head (`final_proj`,
`label_embs_concat`, named as in fairseq's HuBERT) is stored beside it in our checkpoints, so the
encoder part loads in Microsoft's code unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavlm.models.wavlm import WavLM, WavLMConfig


@dataclass
class PretrainOutput:
    logits_masked: Tensor  # [Nm, C] cosine similarity / temperature at masked frames
    targets_masked: Tensor  # [Nm]
    logits_unmasked: Tensor  # [Nu, C]
    targets_unmasked: Tensor  # [Nu]
    features_pen: Tensor  # scalar: mean squared CNN feature (HuBERT's feature penalty)


class WavLMForPretraining(nn.Module):
    def __init__(self, cfg: WavLMConfig, num_classes: int, final_dim: int = 256, logit_temp: float = 0.1,
                 label_rate: float = 50.0):
        super().__init__()
        self.wavlm = WavLM(cfg)
        self.final_proj = nn.Linear(cfg.encoder_embed_dim, final_dim)
        self.label_embs_concat = nn.Parameter(torch.empty(num_classes, final_dim).uniform_())
        self.logit_temp = logit_temp
        self.label_rate = label_rate

    def logits(self, x: Tensor) -> Tensor:
        """Cosine similarity of projected frames [N, D] with every label embedding, / temperature."""
        proj = F.normalize(self.final_proj(x).float(), dim=-1, eps=1e-8)
        emb = F.normalize(self.label_embs_concat.float(), dim=-1, eps=1e-8)
        return proj @ emb.t() / self.logit_temp

    def forward(self, wav: Tensor, lengths: Tensor | None, labels: Tensor, mask_indices: Tensor) -> PretrainOutput:
        """wav [B, S]; labels [B, L] at `label_rate` (-100 = none); mask_indices bool [B, T] model frames."""
        out = self.wavlm(wav, lengths, mask_indices=mask_indices)
        x = out.hidden_states[-1]
        b, t, _ = x.shape
        # labels may run at another rate than the 50 Hz frames (MFCC k-means at 100 Hz): frame i -> label
        # i * ratio; frames beyond the labels are dropped (as fairseq's HuBERT does)
        ratio = self.label_rate * self.wavlm.frame_shift / 16000
        t = min(t, int(labels.shape[1] / ratio))
        idx = (torch.arange(t, device=x.device).float() * ratio).long()
        targets = labels[:, idx]
        valid = targets >= 0
        if out.padding_mask is not None:
            valid &= ~out.padding_mask[:, :t]
        masked = mask_indices[:, :t] & valid
        unmasked = ~mask_indices[:, :t] & valid
        x = x[:, :t]
        return PretrainOutput(
            logits_masked=self.logits(x[masked]), targets_masked=targets[masked],
            logits_unmasked=self.logits(x[unmasked]), targets_unmasked=targets[unmasked],
            features_pen=out.conv_features.float().pow(2).mean(),
        )

    def head_state(self) -> dict[str, Tensor]:
        return {"final_proj.weight": self.final_proj.weight, "final_proj.bias": self.final_proj.bias,
                "label_embs_concat": self.label_embs_concat}
