"""Token-level language model for shallow fusion in CTC beam search (espnet2's TransformerLM or LSTM LM,
wrapped by espnet2's ESPnetLanguageModel for the <sos>/<eos> handling), trained by the shared trainer.

Training text: plain sentences, one per line (the LibriSpeech LM corpus `librispeech-lm-norm.txt[.gz]`),
and/or Kaldi `text` files (`utt WORDS...`, the id dropped) given with a `kaldi:` prefix. The units are the
ASR model's (`data.tokenizer`), so LM and CTC share one token list.
"""
from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavlm.data.tokenizer import Tokenizer
from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.common import read_task_checkpoint
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class LmDataConfig:
    train: list[str] = field(default_factory=list)  # text files; `kaldi:data/x/text` for Kaldi text
    valid: list[str] = field(default_factory=list)
    tokenizer: str = ""
    max_tokens: int = 20_000  # tokens per batch
    max_sentences: int = 0  # 0: all lines of the training text
    max_len: int = 400  # longer sentences are dropped


@dataclass
class LmConfig:
    kind: str = "transformer"  # transformer (espnet2 TransformerLM) | rnn (espnet2 SequentialRNNLM)
    conf: dict = field(default_factory=dict)  # keyword arguments of that class (layer, unit, att_unit, ...)
    data: LmDataConfig = field(default_factory=LmDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def read_sentences(spec: str, limit: int = 0) -> list[str]:
    kaldi = spec.startswith("kaldi:")
    path = Path(spec.removeprefix("kaldi:"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LM text not found")
    out = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if kaldi:
                line = line.partition(" ")[2].strip()
            if line:
                out.append(line)
            if limit and len(out) >= limit:
                break
    return out


def build_lm(kind: str, conf: dict, vocab_size: int) -> torch.nn.Module:
    from espnet2.lm.espnet_model import ESPnetLanguageModel

    if kind == "transformer":
        from espnet2.lm.transformer_lm import TransformerLM

        lm = TransformerLM(vocab_size, **conf)
    elif kind == "rnn":
        from espnet2.lm.seq_rnn_lm import SequentialRNNLM

        lm = SequentialRNNLM(vocab_size, **conf)
    else:
        raise ValueError(f"LM kind must be transformer or rnn, got {kind!r}")
    # ignore_id 0: our padding is the CTC blank, which never occurs in text
    return ESPnetLanguageModel(lm, vocab_size, ignore_id=0)


@dataclass
class LmBatch:
    text: torch.Tensor  # [B, L] padded with 0
    lengths: torch.Tensor

    def to(self, device: torch.device) -> LmBatch:
        return LmBatch(self.text.to(device), self.lengths.to(device))


def _token_batches(lengths: list[int], max_tokens: int, rng: np.random.Generator | None) -> list[list[int]]:
    order = np.argsort(lengths, kind="stable")
    batches, cur, longest = [], [], 0
    for i in order:
        n = lengths[i] + 1
        if cur and (len(cur) + 1) * max(longest, n) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(int(i))
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class LmTask:
    best_metric = ("loss", "min")  # validation cross-entropy per token
    find_unused_parameters = False
    def __init__(self, cfg: LmConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        d = cfg.data
        if not d.train or not d.valid:
            raise ValueError("data.train and data.valid must name LM text files")
        self.tokenizer = Tokenizer(d.tokenizer)
        self.train_ids = self._encode([s for f in d.train for s in read_sentences(f, d.max_sentences)])
        self.valid_ids = self._encode([s for f in d.valid for s in read_sentences(f)])
        log.info("LM on %d sentences (%d tokens), validating on %d; %d units", len(self.train_ids),
                 sum(map(len, self.train_ids)), len(self.valid_ids), len(self.tokenizer))

    def _encode(self, sentences: list[str]) -> list[list[int]]:
        out, dropped = [], 0
        for s in sentences:
            ids = self.tokenizer.encode(s)
            if not ids or len(ids) > self.cfg.data.max_len:
                dropped += 1
                continue
            out.append(ids)
        if dropped:
            log.warning("dropped %d sentences longer than data.max_len %d tokens or empty", dropped,
                        self.cfg.data.max_len)
        if not out:
            raise ValueError("no LM sentence left")
        return out

    def train_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.cfg.trainer.seed, epoch])
        return _token_batches([len(x) for x in self.train_ids], self.cfg.data.max_tokens, rng)

    def valid_batches(self) -> list[list[int]]:
        return [[-1, *b] for b in _token_batches([len(x) for x in self.valid_ids], self.cfg.data.max_tokens, None)]

    def load_batch(self, idx: list[int], seed: int) -> LmBatch:
        src = self.train_ids
        if idx and idx[0] == -1:
            src, idx = self.valid_ids, idx[1:]
        seqs = [src[i] for i in idx]
        lens = torch.tensor([len(s) for s in seqs])
        text = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
        for i, s in enumerate(seqs):
            text[i, : len(s)] = torch.tensor(s)
        return LmBatch(text, lens)

    def build_model(self) -> torch.nn.Module:
        torch.manual_seed(self.cfg.trainer.seed)
        return build_lm(self.cfg.kind, self.cfg.conf, len(self.tokenizer))

    def loss(self, model: torch.nn.Module, batch: LmBatch) -> tuple[torch.Tensor, float, dict]:
        batch = batch.to(self.device)
        # ESPnetLanguageModel's forward (through DDP when distributed): mean NLL per token and the token
        # count (tokens + one <eos> per sentence)
        mean, _, tokens = model(batch.text, batch.lengths)
        loss = mean * tokens
        n = float(tokens)
        return loss, n, {"loss": float(loss.detach()), "tokens": n}

    def valid_step(self, model: torch.nn.Module, batch: LmBatch) -> dict[str, float]:
        _, _, logs = self.loss(model, batch)
        return logs

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        nll = sums["loss"] / max(sums["tokens"], 1.0)
        return {"loss": nll, "ppl": float(np.exp(nll))}

    def model_state(self, model: torch.nn.Module) -> dict[str, Any]:
        return {"task": "lm", "kind": self.cfg.kind, "conf": dict(self.cfg.conf), "tokens": list(self.tokenizer.tokens),
                "model": model.state_dict()}

    def load_model_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        model.load_state_dict(state["model"])


def load_lm(path: str, tokens: list[str], device: str | torch.device = "cpu") -> torch.nn.Module:
    """The espnet2 LM (a beam-search scorer) of an LM checkpoint; its units must be `tokens`."""
    state = read_task_checkpoint(path, "lm", "an LM checkpoint of wavlm.bin.train_lm")
    if list(state["tokens"]) != list(tokens):
        raise CheckpointError(f"{path}: the LM's units differ from the ASR model's ({len(state['tokens'])} vs "
                              f"{len(tokens)} tokens); train the LM with the ASR model's data.tokenizer")
    wrapper = build_lm(state["kind"], state["conf"], len(tokens))
    wrapper.load_state_dict(state["model"])
    return wrapper.lm.to(device).eval()
