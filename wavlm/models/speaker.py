"""Speaker embedding model: WavLM's hidden states, summed with learned softmax weights over all layers
(the paper's speaker-verification setup), or 80-dim filterbanks (the ECAPA-TDNN baseline), into an
ECAPA-TDNN with channel-attentive statistics pooling and a linear embedding layer, all espnet2's blocks
(`espnet2.spk`: EcapaTdnnEncoder, ChnAttnStatPooling, RawNet3Projector = BatchNorm + Linear).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.wavlm import WavLM


class SpeakerModel(nn.Module):
    def __init__(self, wavlm: WavLM | None, feat_dim: int = 80, channels: int = 512, embed_dim: int = 256):
        """`wavlm` None: the input is a filterbank [B, T, feat_dim] instead of a waveform."""
        from espnet2.spk.encoder.ecapa_tdnn_encoder import EcapaTdnnEncoder
        from espnet2.spk.pooling.chn_attn_stat_pooling import ChnAttnStatPooling
        from espnet2.spk.projector.rawnet3_projector import RawNet3Projector

        super().__init__()
        self.wavlm = wavlm
        if wavlm is not None:
            self.layer_sum = WeightedLayerSum(wavlm.num_layers + 1)
            feat_dim = wavlm.embed_dim
        self.feat_dim = feat_dim
        self.ecapa = EcapaTdnnEncoder(feat_dim, ndim=channels, output_size=3 * channels)
        self.pooling = ChnAttnStatPooling(3 * channels)
        self.projector = RawNet3Projector(self.pooling.output_size(), embed_dim)
        self.frozen_encoder = False

    def features(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        if self.wavlm is None:
            return x
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            states = self.wavlm.extract_features(x, lengths).hidden_states
        if self.frozen_encoder:
            states = tuple(h.detach() for h in states)
        return self.layer_sum(states)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: waveform [B, S] (WavLM front end) or filterbank [B, T, F] -> embedding [B, embed_dim].
        Batches are crops of equal length (training) or single utterances (extraction): the ECAPA
        convolutions see no padding."""
        h = self.ecapa(self.features(x, lengths))  # [B, C, T]
        return self.projector(self.pooling(h))

    def head_state(self) -> dict[str, Tensor]:
        """Everything but the WavLM encoder (which is stored under the official names beside it)."""
        return {k: v.detach() for k, v in self.state_dict().items() if not k.startswith("wavlm.")}


class SpeakerClassifier(nn.Module):
    """The speaker model with its AAM-softmax (espnet2) for training: forward(x, labels) -> (mean loss,
    accuracy). Training calls this forward (through DDP when distributed), never the parts."""

    def __init__(self, spk: SpeakerModel, num_speakers: int, margin: float, scale: float):
        from espnet2.spk.loss.aamsoftmax import AAMSoftmax

        super().__init__()
        self.spk = spk
        self.loss = AAMSoftmax(spk.projector.output_size(), num_speakers, margin=margin, scale=scale)

    def forward(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        loss, acc, _ = self.loss(self.spk(x), labels)
        return loss, acc
