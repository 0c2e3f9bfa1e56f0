"""Learnable softmax-weighted sum of hidden states, as SUPERB downstream models use."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WeightedLayerSum(nn.Module):
    """sum_l softmax(w)_l * h_l over L+1 hidden states [B, T, D] (weights start equal).

    `normalize=True` layer-normalises each hidden state (no affine) before the sum, as s3prl's
    featurizer does by default for SUPERB.
    """

    def __init__(self, num_states: int, normalize: bool = False):
        super().__init__()
        if num_states < 1:
            raise ValueError("need at least one hidden state")
        self.weights = nn.Parameter(torch.zeros(num_states))
        self.normalize = normalize

    def forward(self, hidden_states: Sequence[Tensor]) -> Tensor:
        if len(hidden_states) != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} hidden states, got {len(hidden_states)}")
        w = torch.softmax(self.weights, dim=0)
        out = None
        for i, h in enumerate(hidden_states):
            if self.normalize:
                h = F.layer_norm(h, h.shape[-1:])
            out = w[i] * h if out is None else out + w[i] * h
        assert out is not None
        return out

    def layer_weights(self) -> list[float]:
        """The current softmax weights (for logging which layers a task uses)."""
        return torch.softmax(self.weights.detach(), dim=0).tolist()
