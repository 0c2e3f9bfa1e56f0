"""ASR fine-tuning: WavLM encoder + dropout + linear projection + CTC (fairseq's wav2vec 2.0/HuBERT recipe).

The encoder starts from any checkpoint `wavlm.load_model` reads (ours from ssl1, Microsoft's .pt, a Hugging
Face dir) or from random weights (`model.init: ""`, the baseline; then nothing is frozen). The CNN stays frozen
(`feature_grad_mult: 0`), the Transformer is frozen for the first `freeze_updates` updates (only the CTC
projection trains), time and channel masking and layerdrop regularise, the learning rate follows the
tri-stage schedule. The loss is the CTC loss summed over utterances and divided by their number
(fairseq's `sentence_avg: true`) or by the number of target tokens.

Transcripts that cannot be CTC targets (empty, characters outside the units, more labels than the audio
has frames) are handled by `data.bad_utterances`: `skip` (default; each one logged with its reason and
counted) or `fail` (an error naming the utterance).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import editdistance
import numpy as np
import torch

from wavlm.data.audio import read_utterance
from wavlm.data.batching import crop_batch
from wavlm.data.datadir import DataDir
from wavlm.data.tokenizer import Tokenizer
from wavlm.models.checkpoint import CheckpointError, load_model
from wavlm.models.ctc import WavLMForCTC, ctc_greedy
from wavlm.models.wavlm import WavLM, conv_output_lengths
from wavlm.tasks.common import (
    UtteranceBatching,
    encoder_from_state,
    load_model_config,
    read_lengths,
    read_task_checkpoint,
    skips_parameters,
)
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class AsrDataConfig:
    train: str = "data/train"
    valid: str = "data/dev"
    tokenizer: str = ""  # dir or spm.model from wavlm.bin.train_tokenizer
    max_tokens: int = 3_200_000  # samples per batch per GPU (fairseq base_100h)
    max_sample_size: int = 560_000  # longer utterances are skipped (35 s), never cropped
    min_sample_size: int = 0
    valid_max_batches: int = 0  # 0: the whole valid set
    bad_utterances: str = "skip"  # skip | fail


@dataclass
class AsrModelConfig:
    init: str = ""  # checkpoint wavlm.load_model reads; "" = random initialisation from `preset`
    preset: str = "base"  # conf/model/<name>.yaml, only used for random initialisation
    # WavLMConfig fields replaced for fine-tuning (dropouts, masking, layerdrop, feature_grad_mult)
    encoder: dict = field(default_factory=dict)
    final_dropout: float = 0.0
    freeze_updates: int = 0  # the Transformer is frozen (only the CTC projection trains) before this update


@dataclass
class AsrConfig:
    model: AsrModelConfig = field(default_factory=AsrModelConfig)
    data: AsrDataConfig = field(default_factory=AsrDataConfig)
    sentence_avg: bool = True  # normalise the loss by utterances (fairseq fine-tuning) or by tokens
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class AsrBatch:
    wav: torch.Tensor  # [B, S]
    lengths: torch.Tensor  # [B]
    targets: torch.Tensor  # [B, L] padded with -1
    target_lengths: torch.Tensor  # [B]
    ids: list[str]

    def to(self, device: torch.device) -> AsrBatch:
        return AsrBatch(self.wav.to(device), self.lengths.to(device), self.targets.to(device),
                        self.target_lengths.to(device), self.ids)


class AsrDataError(ValueError):
    pass


def ctc_min_frames(ids: list[int]) -> int:
    """Frames CTC needs for a label sequence: one per label plus a blank between repeated labels."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:], strict=False) if a == b)


def usable_utterances(d: DataDir, tok: Tokenizer, frames_of: Callable[[int], int], cfg: Any
                      ) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Lengths (samples) and target ids of the utterances that can be trained on, applying the
    bad_utterances policy to the others. `frames_of(samples)`: the model's output frames; `cfg` has
    bad_utterances, max_sample_size and min_sample_size (AsrDataConfig, SuperbDataConfig)."""
    if cfg.bad_utterances not in ("skip", "fail"):
        raise AsrDataError(f"data.bad_utterances must be skip or fail, got {cfg.bad_utterances!r}")
    lengths = read_lengths(d)
    texts = d.text()
    kept_len: dict[str, int] = {}
    kept_ids: dict[str, list[int]] = {}
    skipped: dict[str, int] = {}

    text_table = d.table("text")

    def bad(utt: str, why: str, kind: str) -> None:
        where = text_table.where(utt) if text_table is not None and utt in text_table else str(d.path)
        msg = f"{where}: utterance {utt}: {why}"
        if cfg.bad_utterances == "fail":
            raise AsrDataError(msg + " (data.bad_utterances=fail; set it to skip to leave such utterances out)")
        if skipped.get(kind, 0) < 5:
            log.warning("skipping %s", msg)
        skipped[kind] = skipped.get(kind, 0) + 1

    for utt, n in lengths.items():
        if utt not in texts:
            bad(utt, "no transcript in text", "no transcript")
            continue
        why = tok.check(texts[utt])
        if why:
            bad(utt, why if why == "empty transcript" else f"{why} in {texts[utt]!r}", why.split(":")[0])
            continue
        if n > cfg.max_sample_size or n < cfg.min_sample_size:
            skipped["length outside min/max_sample_size"] = skipped.get("length outside min/max_sample_size", 0) + 1
            continue
        ids = tok.encode(texts[utt])
        frames = frames_of(n)
        need = ctc_min_frames(ids)
        if frames < need:
            bad(utt, f"{n / 16000:.2f} s of audio gives {frames} frames, fewer than the {need} its "
                     f"{len(ids)} units need for CTC", "audio too short for its transcript")
            continue
        kept_len[utt], kept_ids[utt] = n, ids
    if skipped:
        log.warning("%s: skipped %d of %d utterances: %s", d.path, sum(skipped.values()), len(lengths),
                    ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    if not kept_len:
        raise AsrDataError(f"{d.path}: no usable utterance (see the warnings above)")
    return kept_len, kept_ids


class AsrTask(UtteranceBatching):
    best_metric = ("wer", "min")  # greedy-decoding WER on the validation set (fairseq's best_checkpoint_metric)

    def __init__(self, cfg: AsrConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        d = cfg.data
        if not d.tokenizer:
            raise AsrDataError("data.tokenizer is not set (the units from wavlm.bin.train_tokenizer)")
        self.tokenizer = Tokenizer(d.tokenizer)
        self.encoder = self._load_encoder()
        conv = self.encoder.conv_spec

        def frames_of(n: int) -> int:
            return int(conv_output_lengths(torch.tensor([n]), conv)[0])

        self.train_dir, self.valid_dir = DataDir(d.train), DataDir(d.valid)
        self.train_lengths, self.train_ids = usable_utterances(self.train_dir, self.tokenizer, frames_of, d)
        self.valid_lengths, self.valid_ids = usable_utterances(self.valid_dir, self.tokenizer, frames_of, d)
        self.frozen = False
        # the Transformer sits out the first freeze_updates updates
        self.find_unused_parameters = skips_parameters(self.encoder) or cfg.model.freeze_updates > 0
        log.info("fine-tuning on %d utterances (%.2f h), validating on %d; %d units; encoder from %s",
                 len(self.train_lengths), sum(self.train_lengths.values()) / 16000 / 3600,
                 len(self.valid_lengths), len(self.tokenizer), cfg.model.init or "random initialisation")

    def _load_encoder(self) -> WavLM:
        m = self.cfg.model
        if m.init:
            encoder = load_model(m.init, train=True, overrides=m.encoder)
            size = load_model_config(m.preset)
            if (encoder.cfg.encoder_layers, encoder.cfg.encoder_embed_dim) != (size.encoder_layers,
                                                                               size.encoder_embed_dim):
                # fairseq fine-tunes Large with other rates and batches than Base (vox_*.yaml vs base_*.yaml)
                log.warning("%s has %d layers of %d dims, but this config's schedule is for the %r preset (%d x %d);"
                            " use the matching conf/finetune_<size>_*.yaml", m.init, encoder.cfg.encoder_layers,
                            encoder.cfg.encoder_embed_dim, m.preset, size.encoder_layers, size.encoder_embed_dim)
            return encoder
        # freezing random weights helps nothing: from scratch, the CNN and the Transformer train from update 0
        log.info("random initialisation (%s): feature_grad_mult 1 and freeze_updates 0", m.preset)
        m.freeze_updates = 0
        torch.manual_seed(self.cfg.trainer.seed)
        return WavLM(load_model_config(m.preset, {**m.encoder, "feature_grad_mult": 1.0}))

    # ---- data ----------------------------------------------------------------------------------
    def load_batch(self, ids: list[str], seed: int) -> AsrBatch:
        valid = ids[0] == "valid"
        if valid:
            ids = ids[1:]
        data_dir, targets = (self.valid_dir, self.valid_ids) if valid else (self.train_dir, self.train_ids)
        wavs = [read_utterance(data_dir, u) for u in ids]
        audio, lengths, _ = crop_batch(wavs, self.cfg.data.max_sample_size, np.random.default_rng(seed), pad=True)
        t_len = np.array([len(targets[u]) for u in ids])
        tgt = np.full((len(ids), int(t_len.max())), -1, dtype=np.int64)
        for i, u in enumerate(ids):
            tgt[i, : t_len[i]] = targets[u]
        return AsrBatch(torch.from_numpy(audio), torch.from_numpy(lengths), torch.from_numpy(tgt),
                        torch.from_numpy(t_len), ids)

    # ---- model ---------------------------------------------------------------------------------
    def build_model(self) -> WavLMForCTC:
        torch.manual_seed(self.cfg.trainer.seed)
        if self.encoder.cfg.mask_prob == 0:  # never masks: mask_emb would be a parameter without gradient (DDP)
            self.encoder.mask_emb.requires_grad_(False)
        return WavLMForCTC(self.encoder, len(self.tokenizer), self.cfg.model.final_dropout)

    def before_update(self, model: WavLMForCTC, updates: int) -> None:
        frozen = updates < self.cfg.model.freeze_updates
        if frozen != self.frozen or updates == 0:
            log.info("update %d: Transformer %s", updates, "frozen" if frozen else "trained")
        self.frozen = frozen

    def loss(self, model: torch.nn.Module, batch: AsrBatch) -> tuple[torch.Tensor, float, dict]:
        batch = batch.to(self.device)
        # through DDP's forward when distributed
        loss = model(batch.wav, batch.lengths, batch.targets, batch.target_lengths, frozen=self.frozen).sum()
        n_tokens = float(batch.target_lengths.sum())
        size = float(len(batch.ids)) if self.cfg.sentence_avg else n_tokens
        return loss, size, {"loss": float(loss.detach()), "utts": float(len(batch.ids)), "tokens": n_tokens}

    def valid_step(self, model: torch.nn.Module, batch: AsrBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        core: WavLMForCTC = getattr(model, "module", model)
        out = core.encode(batch.wav, batch.lengths)
        per_utt = core.ctc_losses(out, batch.targets, batch.target_lengths)
        hyps = ctc_greedy(core.ctc.log_softmax(out.hidden), out.lengths)
        sums = {"loss": float(per_utt.sum()), "utts": float(len(batch.ids)), "word_err": 0.0, "words": 0.0,
                "char_err": 0.0, "chars": 0.0}
        for i, hyp in enumerate(hyps):
            ref = self.tokenizer.decode(batch.targets[i, : batch.target_lengths[i]].tolist())
            text = self.tokenizer.decode(hyp)
            sums["word_err"] += editdistance.eval(ref.split(), text.split())
            sums["words"] += len(ref.split())
            sums["char_err"] += editdistance.eval(ref, text)
            sums["chars"] += len(ref)
        return sums

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["loss"] / max(sums["utts"], 1.0),
                "wer": 100.0 * sums["word_err"] / max(sums["words"], 1.0),
                "cer": 100.0 * sums["char_err"] / max(sums["chars"], 1.0)}

    # ---- checkpoints ---------------------------------------------------------------------------
    def model_state(self, model: WavLMForCTC) -> dict[str, Any]:
        """Official layout for the encoder (`cfg` + `model`), the CTC head and the units beside it."""
        return {"cfg": model.wavlm.cfg.to_official(), "model": model.wavlm.state_dict(), "ctc": model.head_state(),
                "task": "asr", "tokens": list(self.tokenizer.tokens),
                "spm_model": torch.frombuffer(bytearray(self.tokenizer.model_bytes), dtype=torch.uint8)}

    def load_model_state(self, model: WavLMForCTC, state: dict[str, Any]) -> None:
        model.wavlm.load_state_dict(state["model"])
        model.ctc.load_state_dict(state["ctc"])


def load_asr_model(path: str, device: str | torch.device = "cpu") -> tuple[WavLMForCTC, Tokenizer]:
    """An ASR checkpoint written by this task (exp/asr/checkpoint_*.pt) -> (model in eval mode, tokenizer)."""
    state = read_task_checkpoint(path, "asr", "an ASR checkpoint of wavlm.bin.train_asr")
    tok = Tokenizer(state["spm_model"].numpy().tobytes())
    if tok.tokens != list(state["tokens"]):
        raise CheckpointError(f"{path}: the stored units disagree with the stored sentencepiece model")
    model = WavLMForCTC(encoder_from_state(state), len(tok))
    model.ctc.load_state_dict(state["ctc"])
    return model.to(device).eval(), tok
