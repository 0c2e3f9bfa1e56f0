"""CTC log posteriors of a data dir, computed once by a batched encoder pass and stored for the decoders.

Every decoder (greedy, espnet's prefix beam search with a token LM, a lexicon decoder with a word n-gram)
and the LM-weight tuning read the same stored matrices on CPUs, in parallel jobs, so the encoder runs once
per data set, batched, on a GPU when there is one (`wavlm.bin.ctc_logprobs` writes them,
`wavlm.bin.asr_decode --logprobs` reads them).

A log-prob dir OUT holds
  logprobs.K.ark/.scp, logprobs.K.done   job K's matrices and done marker (see wavlm.features.shards)
  logprobs.scp, utt2num_frames           the merge: every utterance, sorted in C locale
  tokens.txt                             the units, one per line: line i = column i (0 = <blank>, last = <sos/eos>)
  spm.model                              the sentencepiece model that turns token ids into text
  logprobs_info.json                     what made them: model, its stamp, data dir, frame rate, vocabulary size
Each matrix is float32 [T, V], one row per 20 ms frame: the log-softmax of the CTC projection, rows
summing to 1 in probability (the convention of Kaldi's `nnet3-compute` output with log-softmax). Size:
T x V x 4 bytes, 0.7 MB per hour of audio and unit (LibriSpeech's 5.4 h test-clean with 32 letters:
0.12 GB; BPE units multiply it by V / 32).

Batching: utterances are read in a DataLoader worker (so reading overlaps the encoder), longest first
when the data dir has utt2dur, pooled (`POOL_BATCHES` batches' worth of audio), sorted by length and
cut into padded batches of at most `batch_seconds` of audio, padding included. Each utterance's log
posteriors equal what it gives alone up to float rounding (`WavLMForCTC.utterance_log_probs`: the first
GroupNorm of a Base model takes its statistics over the utterance, not over the padded batch), so the
output does not depend on the batch size, the number of jobs or the device beyond rounding. Batches pay
off on a GPU; on CPUs a padded batch was 20 % slower than one utterance at a time (bench/bench_decode.py:
Base size, 2 threads), so CPU jobs use `batch_seconds` 0 (one utterance per batch).
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

from wavlm.data.audio import SAMPLE_RATE, AudioError, read_utterance
from wavlm.data.datadir import DataDir, DataDirError, atomic_write_text
from wavlm.data.tokenizer import MODEL_NAME, Tokenizer, TokenizerError
from wavlm.features.shards import ShardError, iter_feats, read_scp
from wavlm.models.ctc import WavLMForCTC

logger = logging.getLogger(__name__)

NAME = "logprobs"  # the shard name: logprobs.K.ark/scp, logprobs.scp
INFO_NAME = "logprobs_info.json"
TOKENS_NAME = "tokens.txt"
KIND = "ctc_log_softmax"
POOL_BATCHES = 8  # audio pooled before sorting: this many batches' worth


class LogProbsError(ValueError):
    """A log-prob dir that is missing, incomplete or inconsistent."""


# ---- computing ------------------------------------------------------------------------------------------


def plan_batches(lengths: Sequence[int], max_samples: int) -> list[list[int]]:
    """Indices of `lengths` in batches, longest first, each padded batch at most `max_samples` samples
    (batch size x its longest utterance); an utterance longer than that is a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * lengths[cur[0]] > max_samples:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


class AudioBatches(IterableDataset):
    """Padded batches {utts, wav [B, S], lengths [B]} of a data dir's utterances, read in order, pooled and
    sorted by length; a read error becomes {error: message} (so the message, not a worker traceback, is
    what the user sees)."""

    def __init__(self, data: DataDir, utts: Sequence[str], max_samples: int):
        super().__init__()
        self.data, self.utts, self.max_samples = data, list(utts), max_samples

    def __iter__(self) -> Iterator[dict]:
        pool: list[tuple[str, np.ndarray]] = []
        pooled = 0
        try:
            for utt in self.utts:
                wav = read_utterance(self.data, utt)
                pool.append((utt, wav))
                pooled += len(wav)
                if pooled >= POOL_BATCHES * self.max_samples:
                    yield from self._batches(pool)
                    pool, pooled = [], 0
            yield from self._batches(pool)
        except (AudioError, DataDirError) as e:
            yield {"error": str(e)}

    def _batches(self, pool: list[tuple[str, np.ndarray]]) -> Iterator[dict]:
        for idx in plan_batches([len(w) for _, w in pool], self.max_samples):
            lengths = torch.tensor([len(pool[i][1]) for i in idx], dtype=torch.long)
            wav = torch.zeros(len(idx), int(lengths.max()))
            for b, i in enumerate(idx):
                wav[b, : lengths[b]] = torch.from_numpy(pool[i][1])
            yield {"utts": [pool[i][0] for i in idx], "wav": wav, "lengths": lengths}


@dataclass
class ComputeStats:
    num_utts: int = 0
    audio_seconds: float = 0.0
    padded_seconds: float = 0.0
    compute_seconds: float = 0.0  # wall time of the whole loop, reading included

    def as_dict(self) -> dict:
        rtf = self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0
        return {"num_utts": self.num_utts, "audio_seconds": round(self.audio_seconds, 3),
                "padded_seconds": round(self.padded_seconds, 3), "compute_seconds": round(self.compute_seconds, 3),
                "rtf": round(rtf, 5)}


def batched_log_probs(model: WavLMForCTC, data: DataDir, utts: Sequence[str], device: str | torch.device = "cpu",
                      batch_seconds: float = 100.0, num_workers: int = 1, stats: ComputeStats | None = None,
                      desc: str = "log-probs") -> Iterator[tuple[str, np.ndarray]]:
    """(utt, float32 [T, V] log posteriors) for `utts` of `data`, in batches (in batch order, not `utts`'s).

    Longest first when `data` has utt2dur; `num_workers` 0 reads in this process, 1 in a worker."""
    if batch_seconds < 0:
        raise ValueError(f"--batch_seconds must be >= 0 (0: one utterance per batch), got {batch_seconds}")
    order = list(utts)
    if data.has("utt2dur"):
        dur = data.utt2dur()
        order.sort(key=lambda u: -dur.get(u, 0.0))
    loader = DataLoader(AudioBatches(data, order, int(batch_seconds * SAMPLE_RATE)), batch_size=None,
                        num_workers=num_workers)
    stats = stats if stats is not None else ComputeStats()
    start = time.perf_counter()
    model = model.eval()
    with tqdm(total=len(order), desc=desc, unit="utt", mininterval=10) as bar:
        for batch in loader:
            if "error" in batch:
                raise AudioError(batch["error"])
            with torch.inference_mode():
                out = model.utterance_log_probs(batch["wav"].to(device), batch["lengths"].to(device))
            for utt, lp in zip(batch["utts"], out, strict=True):
                yield utt, lp.float().cpu().numpy()
            stats.num_utts += len(batch["utts"])
            stats.audio_seconds += float(batch["lengths"].sum()) / SAMPLE_RATE
            stats.padded_seconds += batch["wav"].numel() / SAMPLE_RATE
            bar.update(len(batch["utts"]))
    stats.compute_seconds += time.perf_counter() - start


# ---- the stored form ------------------------------------------------------------------------------------


def write_units(outdir: str | os.PathLike, tok: Tokenizer) -> None:
    out = Path(outdir)
    atomic_write_text(out / TOKENS_NAME, "".join(f"{t}\n" for t in tok.tokens))
    tmp = out / f".{MODEL_NAME}.tmp"
    tmp.write_bytes(tok.model_bytes)
    os.replace(tmp, out / MODEL_NAME)


def write_info(outdir: str | os.PathLike, info: dict) -> None:
    atomic_write_text(Path(outdir) / INFO_NAME, json.dumps({"kind": KIND, **info}, sort_keys=True, indent=1) + "\n")


class LogProbsDir:
    """A merged log-prob dir: its utterances, units and matrices; anything missing or inconsistent is an
    error naming the file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        scp = self.path / f"{NAME}.scp"
        info = self.path / INFO_NAME
        for p in (scp, info, self.path / TOKENS_NAME):
            if not p.is_file():
                raise LogProbsError(f"{p}: missing; {self.path} is not a merged log-prob dir "
                                    "(run wavlm.bin.ctc_logprobs and its --merge first)")
        try:
            self.info = json.loads(info.read_text())
        except json.JSONDecodeError as e:
            raise LogProbsError(f"{info}: not JSON ({e})") from None
        if self.info.get("kind") != KIND:
            raise LogProbsError(f"{info}: kind is {self.info.get('kind')!r}, expected {KIND!r}")
        try:
            self.table = read_scp(scp)
            self.tokenizer = Tokenizer(self.path)
        except (ShardError, TokenizerError) as e:
            raise LogProbsError(str(e)) from None
        listed = (self.path / TOKENS_NAME).read_text(encoding="utf-8").splitlines()
        if listed != self.tokenizer.tokens or len(listed) != self.info.get("vocab_size"):
            raise LogProbsError(f"{self.path / TOKENS_NAME}: disagrees with {MODEL_NAME} or {INFO_NAME} "
                                f"({len(listed)} units listed, {len(self.tokenizer)} in the model, "
                                f"vocab_size {self.info.get('vocab_size')})")

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def frame_rate(self) -> float:
        return float(self.info["frame_rate"])

    def utts(self) -> list[str]:
        return list(self.table)

    def source(self) -> dict:
        """What the matrices were computed from (for the config stamp of whatever is decoded from them)."""
        return {"logprobs": str(self.path.resolve()), "model": self.info.get("model"),
                "model_stamp": self.info.get("model_stamp")}

    def items(self, utts: Sequence[str]) -> Iterator[tuple[str, np.ndarray]]:
        """(utt, float32 [T, V]) for `utts`, each checked to have V columns."""
        for utt, m in iter_feats(self.path / f"{NAME}.scp", utts):
            if m.ndim != 2 or m.shape[1] != self.vocab_size:
                raise LogProbsError(f"{self.path / (NAME + '.scp')}: utterance {utt} has a matrix of shape "
                                    f"{m.shape}, expected [T, {self.vocab_size}] ({TOKENS_NAME})")
            yield utt, m
