"""Language models for decoding, trained by the shared trainer: espnet2's TransformerLM or LSTM LM, wrapped by
espnet2's ESPnetLanguageModel for the <sos>/<eos> handling.

Two kinds of units (`data.units`):
  * token: the ASR model's sentencepiece units (`data.tokenizer`), so LM and CTC share one token list; such an
    LM is fused into the token-level CTC beam search (shallow fusion, `wavlm.bin.asr_decode --lm`);
  * word: the `data.vocab_size` most frequent words of the training text (ties broken by the words' code-point
    order, as C-locale `sort`), every other word `<unk>`; the list is `<blank>` (padding, id 0), `<unk>`, the
    words, `<sos/eos>` (last), laid out as our token lists, written to `<exp_dir>/tokens.txt` (line n = id n-1)
    and stored in the checkpoint. Such an LM rescores the N-best lists of the word-level lexicon beam search
    (`wavlm.decode.rescore`). Words are compared as written (LibriSpeech's texts are all upper case).

Training text: plain sentences, one per line (the LibriSpeech LM corpus `librispeech-lm-norm.txt[.gz]`),
and/or Kaldi `text` files (`utt WORDS...`, the id dropped) given with a `kaldi:` prefix. The text is read as a
stream and kept as one flat int32 array (the LibriSpeech LM corpus is 800M words: Python lists of ints would
take tens of GB in every process and DataLoader worker).
"""
from __future__ import annotations

import gzip
import logging
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavlm.config import ConfigError
from wavlm.data.datadir import atomic_write_text
from wavlm.data.tokenizer import BLANK, SOS_EOS, Tokenizer
from wavlm.models.checkpoint import CheckpointError
from wavlm.tasks.common import read_task_checkpoint
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)

UNK = "<unk>"
UNITS = ("token", "word")


@dataclass
class LmDataConfig:
    train: list[str] = field(default_factory=list)  # text files; `kaldi:data/x/text` for Kaldi text
    valid: list[str] = field(default_factory=list)
    units: str = "token"  # token: the ASR model's units (data.tokenizer); word: the data.vocab_size commonest words
    tokenizer: str = ""
    vocab_size: int = 0  # units word: how many words (the rest are <unk>)
    max_tokens: int = 20_000  # tokens per batch
    max_sentences: int = 0  # 0: all lines of the training text
    max_len: int = 400  # longer sentences are dropped

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise ConfigError(f"data.units must be one of {UNITS}, got {self.units!r}", ("data.units",))
        if self.units == "word" and self.vocab_size <= 0:
            raise ConfigError(f"data.units word needs data.vocab_size > 0 (how many words), got {self.vocab_size}",
                              ("data.vocab_size",))
        if self.units == "word" and self.tokenizer:
            raise ConfigError("data.tokenizer is for data.units token; word units are built from the text",
                              ("data.tokenizer",))
        if self.units == "token" and self.vocab_size:
            raise ConfigError("data.vocab_size is for data.units word; token units come from data.tokenizer",
                              ("data.vocab_size",))


@dataclass
class LmConfig:
    kind: str = "transformer"  # transformer (espnet2 TransformerLM) | rnn (espnet2 SequentialRNNLM)
    conf: dict = field(default_factory=dict)  # keyword arguments of that class (layer, unit, att_unit, ...)
    data: LmDataConfig = field(default_factory=LmDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def iter_sentences(spec: str, limit: int = 0) -> Iterator[str]:
    """The non-empty lines of an LM text file (`kaldi:` prefix: a Kaldi text, the utterance id dropped)."""
    kaldi = spec.startswith("kaldi:")
    path = Path(spec.removeprefix("kaldi:"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LM text not found")
    n = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if kaldi:
                line = line.partition(" ")[2].strip()
            if line:
                yield line
                n += 1
                if limit and n >= limit:
                    return


class WordVocab:
    """Word units with the token lists' layout: 0 `<blank>` (padding), 1 `<unk>`, the words, last `<sos/eos>`.
    Same interface as the sentencepiece Tokenizer where the LM uses it (tokens, encode, eos, len)."""

    def __init__(self, words: list[str]):
        specials = {BLANK, UNK, SOS_EOS}
        if specials & set(words) or len(set(words)) != len(words):
            raise ValueError("a word vocabulary holds distinct words and none of <blank>, <unk>, <sos/eos>")
        self.tokens = [BLANK, UNK, *words, SOS_EOS]
        self.blank, self.unk, self.eos = 0, 1, len(self.tokens) - 1
        self.index = {w: i for i, w in enumerate(words, 2)}

    @classmethod
    def from_counts(cls, counts: Counter[str], size: int) -> WordVocab:
        """The `size` most frequent words; equal counts in code-point order (C-locale sort), so the list is a
        function of the text alone."""
        ranked = sorted((w for w in counts if w not in (BLANK, UNK, SOS_EOS)), key=lambda w: (-counts[w], w))
        return cls(ranked[:size])

    @classmethod
    def from_tokens(cls, tokens: list[str]) -> WordVocab:
        """Back from a stored token list (`<blank>`, `<unk>`, words..., `<sos/eos>`)."""
        if len(tokens) < 3 or tokens[:2] != [BLANK, UNK] or tokens[-1] != SOS_EOS:
            raise ValueError("not a word token list (<blank>, <unk>, words..., <sos/eos>)")
        return cls(tokens[2:-1])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str | list[str]) -> list[int]:
        """Word ids of a sentence (a string split at white space, or a word list); unknown words -> `<unk>`."""
        words = text.split() if isinstance(text, str) else text
        return [self.index.get(w, self.unk) for w in words]


def count_words(specs: list[str], limit: int = 0) -> Counter[str]:
    counts: Counter[str] = Counter()
    for spec in specs:
        for s in iter_sentences(spec, limit):
            counts.update(s.split())
    return counts


class Packed:
    """Variable-length id sequences in one flat int32 array: `len`, `[i]` (an array), iteration, `.lengths`."""

    def __init__(self, data: np.ndarray, lengths: np.ndarray):
        self.data, self.lengths = data, lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]: self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))


def encode_text(specs: list[str], encode: Callable[[str], list[int]], max_len: int, limit: int = 0) -> Packed:
    """Encode the sentences of `specs`, dropping empty ones and those longer than `max_len` units."""
    data, lengths, dropped = array("i"), array("q"), 0
    for spec in specs:
        for s in iter_sentences(spec, limit):
            ids = encode(s)
            if not ids or len(ids) > max_len:
                dropped += 1
                continue
            data.extend(ids)
            lengths.append(len(ids))
    if dropped:
        log.warning("%s: dropped %d sentences longer than data.max_len %d units or empty", " ".join(specs), dropped,
                    max_len)
    if not lengths:
        raise ValueError(f"{' '.join(specs)}: no LM sentence left")
    return Packed(np.frombuffer(data, dtype=np.int32), np.frombuffer(lengths, dtype=np.int64))


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


def token_batches(lengths: np.ndarray | list[int], max_tokens: int,
                  rng: np.random.Generator | None = None) -> list[list[int]]:
    """Indices of sequences grouped by length so that a padded batch (one more position per sequence for
    <sos>/<eos>) holds at most `max_tokens`; shuffled by `rng` when given."""
    order = np.argsort(lengths, kind="stable")
    batches, cur, longest = [], [], 0
    for i in order:
        n = int(lengths[i]) + 1
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


def pad(seqs: list[np.ndarray] | list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L] long padded with 0 (`<blank>`, which the LM's attention masks) and the lengths."""
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    text = torch.zeros(len(seqs), int(lens.max()) if len(seqs) else 0, dtype=torch.long)
    for i, s in enumerate(seqs):
        text[i, : len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
    return text, lens


class LmTask:
    best_metric = ("loss", "min")  # validation cross-entropy per token
    find_unused_parameters = False

    def __init__(self, cfg: LmConfig, device: torch.device | None = None, exp_dir: str | os.PathLike | None = None):
        """`exp_dir`: where word units write their list (`tokens.txt`); wavlm.bin.train_lm passes it."""
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        d = cfg.data
        if not d.train or not d.valid:
            raise ValueError("data.train and data.valid must name LM text files")
        if d.units == "word":
            counts = count_words(d.train, d.max_sentences)
            self.tokenizer: Tokenizer | WordVocab = WordVocab.from_counts(counts, d.vocab_size)
            kept = sum(counts[w] for w in self.tokenizer.index)
            log.info("word units: the %d most frequent of %d distinct training words (data.vocab_size %d) cover "
                     "%.2f%% of the %d running words", len(self.tokenizer) - 3, len(counts), d.vocab_size,
                     100 * kept / max(1, counts.total()), counts.total())
            if exp_dir is not None:
                self._write_tokens(Path(exp_dir) / "tokens.txt")
        else:
            self.tokenizer = Tokenizer(d.tokenizer)
        self.train_ids = encode_text(d.train, self.tokenizer.encode, d.max_len, d.max_sentences)
        self.valid_ids = encode_text(d.valid, self.tokenizer.encode, d.max_len)
        log.info("LM on %d sentences (%d units), validating on %d; %d %s units (%.2f%% of the validation units "
                 "<unk>)", len(self.train_ids), len(self.train_ids.data), len(self.valid_ids), len(self.tokenizer),
                 d.units, 100 * float(np.mean(self.valid_ids.data == self.tokenizer.unk)))

    def _write_tokens(self, path: Path) -> None:
        """The word list as <exp_dir>/tokens.txt; one already there (a run being resumed) must be the same."""
        text = "\n".join(self.tokenizer.tokens) + "\n"
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            raise ValueError(f"{path} holds another word list than this run's ({len(self.tokenizer)} units): the "
                             "training text or data.vocab_size changed; use a new --exp_dir")
        atomic_write_text(path, text)  # every rank writes the same list; the write is atomic

    def train_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.cfg.trainer.seed, epoch])
        return token_batches(self.train_ids.lengths, self.cfg.data.max_tokens, rng)

    def valid_batches(self) -> list[list[int]]:
        return [[-1, *b] for b in token_batches(self.valid_ids.lengths, self.cfg.data.max_tokens)]

    def load_batch(self, idx: list[int], seed: int) -> LmBatch:
        src = self.train_ids
        if idx and idx[0] == -1:
            src, idx = self.valid_ids, idx[1:]
        return LmBatch(*pad([src[i] for i in idx]))

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
        return {"task": "lm", "kind": self.cfg.kind, "conf": dict(self.cfg.conf), "units": self.cfg.data.units,
                "tokens": list(self.tokenizer.tokens), "model": model.state_dict()}

    def load_model_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None:
        if list(state["tokens"]) != list(self.tokenizer.tokens):
            raise CheckpointError(
                f"the checkpoint being resumed has other units than this run ({len(state['tokens'])} vs "
                f"{len(self.tokenizer)}): the training text, data.units, data.vocab_size or data.tokenizer changed; "
                "use a new --exp_dir")
        model.load_state_dict(state["model"])


def load_lm(path: str, tokens: list[str], device: str | torch.device = "cpu") -> torch.nn.Module:
    """The espnet2 LM (a beam-search scorer) of a token-unit LM checkpoint; its units must be `tokens`."""
    state = read_task_checkpoint(path, "lm", "an LM checkpoint of wavlm.bin.train_lm")
    if state.get("units", "token") != "token":
        raise CheckpointError(f"{path}: a {state['units']}-level LM; the token beam search needs an LM over the ASR "
                              "model's units (word LMs rescore N-best lists: wavlm.decode.rescore)")
    if list(state["tokens"]) != list(tokens):
        raise CheckpointError(f"{path}: the LM's units differ from the ASR model's ({len(state['tokens'])} vs "
                              f"{len(tokens)} tokens); train the LM with the ASR model's data.tokenizer")
    wrapper = build_lm(state["kind"], state["conf"], len(tokens))
    wrapper.load_state_dict(state["model"])
    return wrapper.lm.to(device).eval()
