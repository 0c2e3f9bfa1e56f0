"""SUPERB downstream models: a (frozen) upstream, a learnable weighted sum of its hidden states, a task head.

    upstream (wavlm/models/upstream.py) -> L+1 hidden states [B, T, D] (outside autograd when frozen)
      -> WeightedLayerSum: softmax(w) . states, w starting at zero (s3prl's Featurizer)
      -> head: CtcHead (PR, ASR), UtteranceHead (SID), XVectorSvHead (ASV) or FrameHead (SD)

The heads are those of s3prl's SUPERB downstreams (legacy `s3prl/downstream/*`, which produced the SUPERB
numbers); each class names the file it follows. Every head has `loss(x, lengths, targets) -> (loss summed over
the batch's utterances, logs)` for training and its own inference method.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.pit import pit_bce
from wavlm.models.upstream import Upstream
from wavlm.models.xvector import AMSoftmax, TDNNLayer, _masked_mean_std


def _valid(lengths: Tensor, t: int) -> Tensor:
    """bool [B, T], True on the first lengths[b] frames."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class CtcHead(nn.Module):
    """Linear projection, then `rnn_layers` single-layer (Bi)LSTMs each followed by dropout, then a linear layer
    to the units, trained with CTC (blank 0).

    PR (s3prl/downstream/ctc/libriphone.yaml, `select: FrameLevel`): Linear(D, 256) -> Linear(256, V), no RNN.
    ASR (s3prl/downstream/asr/config.yaml, `select: RNNs`): Linear(D, 1024) -> 2 x BiLSTM(1024), dropout 0.2
    -> Linear(2048, V). The loss of an utterance is its CTC loss divided by its target length and summed over the
    batch (the caller divides by the utterance count: torch's CTCLoss(reduction="mean"), as s3prl).
    """

    def __init__(self, in_dim: int, vocab_size: int, project_dim: int = 256, rnn_layers: int = 0,
                 rnn_dim: int = 1024, bidirectional: bool = True, dropout: float = 0.2):
        super().__init__()
        self.projector = nn.Linear(in_dim, project_dim)
        dims = [project_dim]
        self.rnns = nn.ModuleList()
        for _ in range(rnn_layers):
            self.rnns.append(nn.LSTM(dims[-1], rnn_dim, batch_first=True, bidirectional=bidirectional))
            dims.append(rnn_dim * (2 if bidirectional else 1))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dims[-1], vocab_size)

    def log_probs(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x [B, T, D] -> CTC log posteriors [B, T, V] (frames past lengths are meaningless)."""
        x = self.projector(x)
        t = x.shape[1]
        for rnn in self.rnns:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=t)
            x = self.dropout(x)
        return F.log_softmax(self.out(x).float(), dim=-1)

    def loss(self, x: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor) -> tuple[Tensor, dict]:
        """targets [B, L] padded with -1 (ignored), target_lengths [B]."""
        logp = self.log_probs(x, lengths)
        per_utt = F.ctc_loss(logp.transpose(0, 1), targets.clamp(min=0), lengths.clamp(max=logp.shape[1]),
                             target_lengths, blank=0, reduction="none", zero_infinity=True)
        loss = (per_utt / target_lengths.clamp(min=1).to(per_utt.dtype)).sum()
        return loss, {"ctc_sum": float(per_utt.detach().sum())}


class UtteranceHead(nn.Module):
    """SID (s3prl/downstream/voxceleb1/expert.py + model.py): Linear(D, 256), mean over the valid frames,
    Linear(256, classes), cross-entropy."""

    def __init__(self, in_dim: int, num_classes: int, project_dim: int = 256):
        super().__init__()
        self.projector = nn.Linear(in_dim, project_dim)
        self.out = nn.Linear(project_dim, num_classes)

    def logits(self, x: Tensor, lengths: Tensor) -> Tensor:
        h = self.projector(x)
        valid = _valid(lengths, h.shape[1]).unsqueeze(-1)
        pooled = h.masked_fill(~valid, 0.0).sum(1) / lengths.clamp(min=1).to(h.dtype)[:, None]
        return self.out(pooled)

    def loss(self, x: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        logits = self.logits(x, lengths)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        return loss, {"correct": float((logits.argmax(-1) == labels).sum())}


class XVectorSvHead(nn.Module):
    """ASV (s3prl/downstream/sv_voxceleb1/model.py `X_vector`, configs/amsoftmax.yaml): Linear(D, 512), five TDNN
    layers (512, 512, 512, 512, 1500; kernels 5, 3, 3, 1, 1; dilations 1, 2, 3, 1, 1; ReLU, no batch norm),
    mean and standard deviation over the frames, Linear(3000, 512) + ReLU = the embedding scored at test time,
    Linear(512, 512) + ReLU, AM-softmax (scale 30, margin 0.4) over the speakers."""

    def __init__(self, in_dim: int, num_speakers: int, tdnn_dim: tuple[int, ...] = (512, 512, 512, 512, 1500),
                 tdnn_kernel: tuple[int, ...] = (5, 3, 3, 1, 1), tdnn_dilation: tuple[int, ...] = (1, 2, 3, 1, 1),
                 embed_dim: int = 512, scale: float = 30.0, margin: float = 0.4):
        super().__init__()
        if not len(tdnn_dim) == len(tdnn_kernel) == len(tdnn_dilation):
            raise ValueError(f"tdnn_dim, tdnn_kernel and tdnn_dilation differ in length: {tdnn_dim}, {tdnn_kernel}, "
                             f"{tdnn_dilation}")
        self.projector = nn.Linear(in_dim, tdnn_dim[0])
        dims = (tdnn_dim[0], *tdnn_dim)
        self.tdnn = nn.ModuleList(TDNNLayer(dims[i], dims[i + 1], tdnn_kernel[i], tdnn_dilation[i])
                                  for i in range(len(tdnn_dim)))
        self.embedding = nn.Linear(2 * tdnn_dim[-1], embed_dim)
        self.hidden = nn.Linear(embed_dim, embed_dim)
        self.objective = AMSoftmax(embed_dim, num_speakers, scale=scale, margin=margin)

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x [B, T, D] -> embeddings [B, embed_dim]; utterance b pools the TDNN frames whose receptive field
        lies inside its lengths[b] frames."""
        h = self.projector(x)
        for layer in self.tdnn:
            h = layer(h)
        n = (lengths - sum(layer.span - 1 for layer in self.tdnn)).clamp(max=h.shape[1])
        if (n < 2).any():
            raise ValueError(f"utterance(s) too short for the x-vector TDNN: {lengths.tolist()} frames give "
                             f"{n.tolist()} TDNN frames (at least 2 are needed for a standard deviation)")
        mean, std = _masked_mean_std(h, n)
        return F.relu(self.embedding(torch.cat([mean, std], dim=-1)))

    def loss(self, x: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        out = F.relu(self.hidden(self.embed(x, lengths)))
        loss = self.objective(out.float(), labels) * len(labels)  # AMSoftmax averages over the batch
        with torch.no_grad():
            cos = F.normalize(out.float(), dim=1) @ F.normalize(self.objective.weight, dim=0)
        return loss, {"correct": float((cos.argmax(-1) == labels).sum())}


class FrameHead(nn.Module):
    """SD: per-frame speaker activity logits [B, T, speakers], trained with permutation-invariant BCE.

    rnn_layers > 0: s3prl's SUPERB diarization model (s3prl/downstream/diarization/model.py, config.yaml
    `modelrc: {rnn_layers: 1, hidden_size: 512}`): a unidirectional LSTM, then Linear(hidden, speakers); being
    unidirectional, padding after an utterance cannot change its valid frames, so nothing is packed.
    rnn_layers = 0: one Linear(D, speakers), the classifier of Hugging Face's WavLMForAudioFrameClassification
    (microsoft/wavlm-base-plus-sd), so such a model exports to that format."""

    def __init__(self, in_dim: int, num_speakers: int, rnn_layers: int = 1, hidden: int = 512):
        super().__init__()
        self.rnn = nn.LSTM(in_dim, hidden, num_layers=rnn_layers, batch_first=True) if rnn_layers else None
        self.linear = nn.Linear(hidden if rnn_layers else in_dim, num_speakers)

    def logits(self, x: Tensor, lengths: Tensor) -> Tensor:
        if self.rnn is not None:
            x, _ = self.rnn(x)
        return self.linear(x)

    def loss(self, x: Tensor, lengths: Tensor, labels: Tensor) -> tuple[Tensor, dict]:
        """labels [B, T, speakers] in {0, 1}, in any speaker order (padded frames ignored); the loss is s3prl's
        PIT BCE times the batch size (summed over utterances, as the other heads)."""
        logits = self.logits(x, lengths)
        n = min(logits.shape[1], labels.shape[1])  # the labels were made for upstream.frames(samples) frames
        loss, best = pit_bce(logits[:, :n].float(), labels[:, :n], lengths.clamp(max=n))
        return loss * len(labels), {"logits": logits[:, :n].detach(), "labels": best}


class SuperbModel(nn.Module):
    """upstream -> weighted layer sum -> head. `forward(wav, lengths, *targets)` is the training step (through
    DDP when distributed): (loss summed over the batch, logs)."""

    def __init__(self, upstream: Upstream, head: nn.Module, normalize: bool = False):
        super().__init__()
        self.upstream = upstream
        self.featurizer = WeightedLayerSum(upstream.num_states, normalize)
        self.head = head

    def features(self, wav: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The weighted sum [B, T, D] and the valid frames [B]."""
        out = self.upstream(wav, lengths)
        return self.featurizer(out.hidden_states), out.lengths

    def forward(self, wav: Tensor, lengths: Tensor, *targets: Tensor) -> tuple[Tensor, dict]:
        x, frames = self.features(wav, lengths)
        return self.head.loss(x, frames, *targets)

    def trained_state(self) -> dict[str, Tensor]:
        """What training changes: the weighted sum and the head, and the upstream when it is fine-tuned."""
        return {k: v.detach() for k, v in self.state_dict().items()
                if self.upstream.trainable or not k.startswith("upstream.")}
