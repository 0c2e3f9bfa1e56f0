"""SUPERB tasks with a frozen upstream (Yang et al. 2021; the WavLM paper's Table I), on s3prl's heads and
hyper-parameters (each config names the s3prl file its values come from):

    pr    phoneme recognition: phone transcripts (wavlm.bin.text_to_phones), CtcHead (Linear-Linear), PER
    asr   speech recognition: characters, CtcHead (2 x BiLSTM 1024), WER without LM
    sid   speaker identification (VoxCeleb1 iden_split): UtteranceHead (mean pooling + linear), accuracy
    asv   speaker verification: XVectorSvHead with AM-softmax on VoxCeleb1 dev speakers; EER on trials is
          scored after training (wavlm.bin.superb_infer + wavlm.bin.score_sv)
    sd    speaker diarization (Libri2Mix): FrameHead (LSTM + linear, or linear) on `data.chunk_frames`-frame chunks
          of the recordings, labels from the data dir's `rttm`, PIT BCE; DER of the dev recordings (threshold 0.5,
          no median filter; the post-processing is tuned after training by wavlm.bin.score_diar)

The upstream (`upstream.path`: any wavlm.load_model source, `fbank`, or a transformers HuBERT/wav2vec 2.0 dir)
is frozen unless `upstream.trainable`; the weighted sum of its hidden states and the head are trained, and the
best checkpoint is chosen by the task's validation metric (pr: PER, asr: WER, sid: accuracy, asv: loss on held-out
utterances of the training speakers, sd: DER). Checkpoints hold the weighted sum and the head (and the upstream's
weights only when it is fine-tuned) with the upstream's path; the units (pr, asr) or speakers (sid, asv) beside them.

Utterances that cannot be trained on (CTC targets longer than the frames, words outside the units, too short for
the x-vector TDNN) follow `data.bad_utterances`: skip (with a count) or fail.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import editdistance
import numpy as np
import torch

from wavlm.data.audio import read_utterance
from wavlm.data.batching import bucket_batches, crop_batch
from wavlm.data.datadir import DataDir
from wavlm.data.rttm import Turn, read_rttm
from wavlm.data.tokenizer import Tokenizer
from wavlm.metrics.diarization import frame_der_counts, frame_labels
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.ctc import ctc_greedy
from wavlm.models.frame_classifier import FrameClassifier, FrameClassifierOutput
from wavlm.models.superb import CtcHead, FrameHead, SuperbModel, UtteranceHead, XVectorSvHead
from wavlm.models.upstream import WavLMUpstream, load_upstream
from wavlm.models.wavlm import WavLM
from wavlm.tasks.asr import usable_utterances
from wavlm.tasks.common import read_lengths, read_task_checkpoint, skips_parameters
from wavlm.tasks.sv import split_speakers
from wavlm.train.trainer import TrainerConfig

log = logging.getLogger(__name__)

TASKS = ("pr", "asr", "sid", "asv", "sd")
BEST = {"pr": ("per", "min"), "asr": ("wer", "min"), "sid": ("acc", "max"), "asv": ("loss", "min"),
        "sd": ("der", "min")}


class SuperbDataError(ValueError):
    pass


@dataclass
class SuperbUpstreamConfig:
    path: str = ""  # wavlm.load_model source, `fbank`, or a transformers speech SSL dir
    trainable: bool = False  # fine-tune it (not the SUPERB protocol)
    lr_scale: float = 1.0  # its learning rate relative to the head's, when trainable
    normalize: bool = False  # layer-normalise each hidden state before the sum (s3prl's --upstream_feature_normalize)


@dataclass
class SuperbHeadConfig:
    project_dim: int = 256  # pr, asr, sid: the first Linear's width
    rnn_layers: int = 0  # pr, asr: BiLSTM layers after it; sd: unidirectional LSTM layers (0: one linear layer)
    rnn_dim: int = 1024  # sd: the LSTM's hidden size
    bidirectional: bool = True
    dropout: float = 0.2
    tdnn_dim: list[int] = field(default_factory=lambda: [512, 512, 512, 512, 1500])  # asv
    tdnn_kernel: list[int] = field(default_factory=lambda: [5, 3, 3, 1, 1])
    tdnn_dilation: list[int] = field(default_factory=lambda: [1, 2, 3, 1, 1])
    embed_dim: int = 512
    margin: float = 0.4  # asv AM-softmax
    scale: float = 30.0


@dataclass
class SuperbDataConfig:
    train: str = "data/train"
    valid: str = ""  # pr, asr, sid: the dev data dir; asv: "" = held-out utterances of the training speakers
    tokenizer: str = ""  # pr, asr: units from wavlm.bin.train_tokenizer (word for phones, char for ASR)
    batch_size: int = 16  # utterances per batch per GPU
    half_batch_samples: int = 0  # a batch whose longest utterance is longer is split in two (0: never)
    crop_samples: int = 0  # sid, asv: random crop of this many samples in training (0: whole utterances)
    valid_batch_size: int = 1  # whole utterances, one at a time by default (s3prl's eval_batch_size)
    valid_max_batches: int = 0  # 0: all
    valid_per_speaker: int = 1  # asv without data.valid: utterances held out per training speaker
    max_sample_size: int = 560_000  # pr, asr: longer utterances are skipped (35 s)
    min_sample_size: int = 0
    min_seconds: float = 0.0  # sid, asv: shorter training utterances are skipped (s3prl ASV: 2 s)
    chunk_frames: int = 2000  # sd: training chunks of this many upstream frames (s3prl's chunk_size)
    num_speakers: int = 2  # sd: speaker outputs; a recording with more speakers in its rttm is an error
    bad_utterances: str = "skip"  # skip | fail


@dataclass
class SuperbConfig:
    task: str = "pr"  # pr | asr | sid | asv | sd
    upstream: SuperbUpstreamConfig = field(default_factory=SuperbUpstreamConfig)
    head: SuperbHeadConfig = field(default_factory=SuperbHeadConfig)
    data: SuperbDataConfig = field(default_factory=SuperbDataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


@dataclass
class SuperbBatch:
    wav: torch.Tensor  # [B, S]
    lengths: torch.Tensor  # [B] samples
    targets: tuple[torch.Tensor, ...]  # ctc: (targets [B, L] padded with -1, lengths [B]); sid/asv: (labels [B],);
    # sd: (speaker activity [B, T, speakers],)
    ids: list[str]

    def to(self, device: torch.device) -> SuperbBatch:
        return SuperbBatch(self.wav.to(device), self.lengths.to(device), tuple(t.to(device) for t in self.targets),
                           self.ids)


def build_head(task: str, h: SuperbHeadConfig, in_dim: int, num_out: int) -> torch.nn.Module:
    if task in ("pr", "asr"):
        return CtcHead(in_dim, num_out, h.project_dim, h.rnn_layers, h.rnn_dim, h.bidirectional, h.dropout)
    if task == "sid":
        return UtteranceHead(in_dim, num_out, h.project_dim)
    if task == "sd":
        return FrameHead(in_dim, num_out, h.rnn_layers, h.rnn_dim)
    return XVectorSvHead(in_dim, num_out, tuple(h.tdnn_dim), tuple(h.tdnn_kernel), tuple(h.tdnn_dilation),
                         h.embed_dim, h.scale, h.margin)


class SuperbTask:
    def __init__(self, cfg: SuperbConfig, device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or torch.device("cpu")
        if cfg.task not in TASKS:
            raise SuperbDataError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
        self.best_metric = BEST[cfg.task]
        if not cfg.upstream.path:
            raise SuperbDataError("upstream.path is not set (a WavLM checkpoint, a Hugging Face dir or fbank)")
        self.upstream = load_upstream(cfg.upstream.path, cfg.upstream.trainable)
        # a fine-tuned WavLM with layerdrop skips layers; a transformers model never uses its mask embedding
        model = getattr(self.upstream, "model", None)
        self.find_unused_parameters = cfg.upstream.trainable and (
            skips_parameters(model) if isinstance(model, WavLM) else True)
        d = cfg.data
        self.train_dir = DataDir(d.train)
        self.tokenizer: Tokenizer | None = None
        self.labels: list[str] = []  # speakers (sid, asv)
        if cfg.task in ("pr", "asr"):
            self._ctc_data()
        elif cfg.task == "sd":
            self._sd_data()
        else:
            self._speaker_data()
        log.info("SUPERB %s: %d training utterances (%.2f h), %d for validation; upstream %s", cfg.task,
                 len(self.train_lengths), sum(self.train_lengths.values()) / 16000 / 3600, len(self.valid_lengths),
                 self.upstream.describe())

    # ---- data ----------------------------------------------------------------------------------
    def _ctc_data(self) -> None:
        d = self.cfg.data
        if not d.tokenizer:
            raise SuperbDataError(f"data.tokenizer is not set ({self.cfg.task}: units from wavlm.bin.train_tokenizer)")
        if not d.valid:
            raise SuperbDataError(f"data.valid is not set ({self.cfg.task} validates on a dev set)")
        self.tokenizer = Tokenizer(d.tokenizer)
        self.valid_dir = DataDir(d.valid)
        self.train_lengths, self.train_targets = usable_utterances(self.train_dir, self.tokenizer,
                                                                   self.upstream.frames, d)
        self.valid_lengths, self.valid_targets = usable_utterances(self.valid_dir, self.tokenizer,
                                                                   self.upstream.frames, d)

    def _speaker_data(self) -> None:
        d = self.cfg.data
        where = str(self.train_dir.path)
        lengths = read_lengths(self.train_dir)
        if d.valid:
            self.labels, train, _ = split_speakers(self.train_dir.utt2spk(), lengths, int(d.min_seconds * 16000), 0,
                                                   where)
            self.valid_dir = DataDir(d.valid)
            valid_lengths = read_lengths(self.valid_dir)
            valid = self.valid_dir.utt2spk()
            unknown = sorted(u for u in valid_lengths if valid.get(u) not in set(self.labels))
            if unknown:
                raise SuperbDataError(f"{self.valid_dir.path}: {len(unknown)} utterances of speakers without "
                                      f"training utterances in {where}, e.g. {unknown[0]} ({valid.get(unknown[0])})")
        else:
            self.labels, train, valid = split_speakers(self.train_dir.utt2spk(), lengths, int(d.min_seconds * 16000),
                                                       d.valid_per_speaker, where)
            self.valid_dir = self.train_dir
            valid_lengths = lengths
        index = {s: i for i, s in enumerate(self.labels)}
        self.train_lengths = {u: lengths[u] for u in train}
        self.train_targets = {u: [i] for u, i in train.items()}
        self.valid_lengths = {u: valid_lengths[u] for u in valid}
        self.valid_targets = {u: [index[s]] for u, s in valid.items()}

    def _sd_data(self) -> None:
        """Training items are chunks `<reco>@<first sample>` of data.chunk_frames upstream frames (s3prl's training
        chunks, without overlap; the last one shorter), validation items whole recordings; the speakers of each
        recording are those of its rttm, in order of appearance (PIT makes the order irrelevant)."""
        d = self.cfg.data
        if not d.valid:
            raise SuperbDataError("data.valid is not set (sd validates the DER of a dev set)")
        self.valid_dir = DataDir(d.valid)
        self.turns: dict[str, list[Turn]] = {}
        self.labels = [f"spk{i}" for i in range(d.num_speakers)]
        chunk = d.chunk_frames * self.upstream.frame_shift
        for data_dir, name in ((self.train_dir, "train"), (self.valid_dir, "valid")):
            rttm = data_dir.path / "rttm"
            if not rttm.is_file():
                raise SuperbDataError(f"{data_dir.path}: no rttm (the reference speaker turns of its recordings)")
            turns = read_rttm(rttm)
            lengths = read_lengths(data_dir)
            missing = sorted(set(lengths) - set(turns))  # a recording without speech has no rttm line
            for reco, ts in turns.items():
                if reco not in lengths:
                    raise SuperbDataError(f"{rttm}: recording {reco} is not in {data_dir.path}/utt2dur")
                spk = list(dict.fromkeys(t.speaker for t in ts))
                if len(spk) > d.num_speakers:
                    raise SuperbDataError(f"{rttm}: recording {reco} has {len(spk)} speakers ({' '.join(spk)}), "
                                          f"more than data.num_speakers={d.num_speakers}")
                if self.upstream.frames(lengths[reco]) < 1:
                    raise SuperbDataError(f"{data_dir.path}: recording {reco} ({lengths[reco]} samples) is shorter "
                                          f"than one upstream frame")
                self.turns[f"{name}:{reco}"] = ts
            for reco in missing:
                self.turns[f"{name}:{reco}"] = []
            if name == "train":
                self.train_lengths = {f"{reco}@{start}": min(chunk, n - start) for reco, n in lengths.items()
                                      for start in range(0, n, chunk) if self.upstream.frames(min(chunk, n - start))}
                self.train_targets = {}
            else:
                self.valid_lengths, self.valid_targets = dict(lengths), {}

    def _sd_labels(self, name: str, item: str, samples: int) -> np.ndarray:
        """[frames, speakers] activity of a chunk `<reco>@<first sample>` (or a whole recording)."""
        reco, _, start = item.partition("@")
        off = int(start or 0) / 16000
        turns = [Turn(t.reco, t.start - off, t.dur, t.speaker) for t in self.turns[f"{name}:{reco}"]]
        speakers = list(dict.fromkeys(t.speaker for t in turns))
        speakers += [f"<none{i}>" for i in range(self.cfg.data.num_speakers - len(speakers))]
        return frame_labels(turns, speakers, self.upstream.frames(samples), self.upstream.frame_shift / 16000)

    def train_batches(self, epoch: int) -> list[list[str]]:
        d = self.cfg.data
        lengths = self.train_lengths
        if d.crop_samples:
            lengths = {u: min(n, d.crop_samples) for u, n in lengths.items()}
        return bucket_batches(lengths, d.batch_size, self.cfg.trainer.seed, epoch, half_above=d.half_batch_samples)

    def valid_batches(self) -> list[list[str]]:
        d = self.cfg.data
        batches = bucket_batches(self.valid_lengths, d.valid_batch_size, 0, 0, shuffle=False)
        return [["valid", *b] for b in (batches[: d.valid_max_batches] if d.valid_max_batches else batches)]

    def load_batch(self, ids: list[str], seed: int) -> SuperbBatch:
        valid = ids[0] == "valid"
        if valid:
            ids = ids[1:]
        data_dir, targets = (self.valid_dir, self.valid_targets) if valid else (self.train_dir, self.train_targets)
        if self.cfg.task == "sd":
            return self._sd_batch(data_dir, ids, "valid" if valid else "train")
        wavs = [read_utterance(data_dir, u) for u in ids]
        crop = self.cfg.data.crop_samples if not valid and self.cfg.data.crop_samples else 10**12
        audio, lengths, _ = crop_batch(wavs, crop, np.random.default_rng(seed), pad=True)
        if self.tokenizer is None:
            target = (torch.tensor([targets[u][0] for u in ids]),)
        else:
            t_len = np.array([len(targets[u]) for u in ids])
            tgt = np.full((len(ids), int(t_len.max())), -1, dtype=np.int64)
            for i, u in enumerate(ids):
                tgt[i, : t_len[i]] = targets[u]
            target = (torch.from_numpy(tgt), torch.from_numpy(t_len))
        return SuperbBatch(torch.from_numpy(audio), torch.from_numpy(lengths), target, ids)

    def _sd_batch(self, data_dir: DataDir, ids: list[str], name: str) -> SuperbBatch:
        wavs, labels = [], []
        for item in ids:
            reco, _, start = item.partition("@")
            wav = read_utterance(data_dir, reco)
            if start:
                wav = wav[int(start): int(start) + self.train_lengths[item]]
            wavs.append(wav)
            labels.append(self._sd_labels(name, item, len(wav)))
        lengths = np.array([len(w) for w in wavs])
        audio = np.zeros((len(wavs), int(lengths.max())), dtype=np.float32)
        act = np.zeros((len(wavs), max(len(x) for x in labels), self.cfg.data.num_speakers), dtype=np.float32)
        for i, (w, x) in enumerate(zip(wavs, labels, strict=True)):
            audio[i, : len(w)], act[i, : len(x)] = w, x
        return SuperbBatch(torch.from_numpy(audio), torch.from_numpy(lengths), (torch.from_numpy(act),), ids)

    # ---- model ---------------------------------------------------------------------------------
    def num_outputs(self) -> int:
        return len(self.tokenizer) if self.tokenizer is not None else len(self.labels)

    def build_model(self) -> SuperbModel:
        torch.manual_seed(self.cfg.trainer.seed)
        head = build_head(self.cfg.task, self.cfg.head, self.upstream.dim, self.num_outputs())
        return SuperbModel(self.upstream, head, self.cfg.upstream.normalize)

    def param_groups(self, model: SuperbModel) -> list[dict]:
        up = [p for p in model.upstream.parameters() if p.requires_grad]
        rest = [p for n, p in model.named_parameters() if not n.startswith("upstream.") and p.requires_grad]
        return [{"params": rest, "lr_scale": 1.0}] + (
            [{"params": up, "lr_scale": self.cfg.upstream.lr_scale}] if up else [])

    def loss(self, model: torch.nn.Module, batch: SuperbBatch) -> tuple[torch.Tensor, float, dict]:
        batch = batch.to(self.device)
        loss, logs = model(batch.wav, batch.lengths, *batch.targets)  # through DDP's forward when distributed
        n = float(len(batch.ids))
        out = {"loss": float(loss.detach()), "utts": n}
        if "correct" in logs:
            out.update(acc_label=logs["correct"], count_label=n)
        return loss, n, out

    @torch.no_grad()
    def valid_step(self, model: torch.nn.Module, batch: SuperbBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        core: SuperbModel = getattr(model, "module", model)
        x, frames = core.features(batch.wav, batch.lengths)
        loss, logs = core.head.loss(x, frames, *batch.targets)
        sums = {"loss": float(loss), "utts": float(len(batch.ids))}
        if self.cfg.task == "sd":  # frame-level DER at threshold 0.5 against the best permutation of the labels
            valid = (torch.arange(logs["labels"].shape[1], device=frames.device)[None, :] < frames[:, None])
            sums.update(frame_der_counts(logs["logits"] > 0, logs["labels"] > 0.5, valid))
            return sums
        if self.tokenizer is None:
            sums["correct"] = logs["correct"]
            return sums
        hyps = ctc_greedy(core.head.log_probs(x, frames), frames)
        sums.update(err=0.0, ref=0.0)
        targets, t_len = batch.targets
        for i, hyp in enumerate(hyps):
            ref = self.tokenizer.decode(targets[i, : t_len[i]].tolist()).split()
            sums["err"] += editdistance.eval(ref, self.tokenizer.decode(hyp).split())
            sums["ref"] += len(ref)
        return sums

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums["utts"], 1.0)
        out = {"loss": sums["loss"] / n}
        if self.cfg.task == "sd":
            out["der"] = 100.0 * (sums["missed"] + sums["false_alarm"] + sums["confusion"]) / max(sums["speech"], 1.0)
        elif self.tokenizer is not None:  # word error rate over words (asr) or phones (pr), in %
            out[self.best_metric[0]] = 100.0 * sums["err"] / max(sums["ref"], 1.0)
        else:
            out["acc"] = 100.0 * sums["correct"] / n
        return out

    # ---- checkpoints ---------------------------------------------------------------------------
    def model_state(self, model: SuperbModel) -> dict[str, Any]:
        state: dict[str, Any] = {"task": "superb", "superb_task": self.cfg.task, "upstream": self.cfg.upstream.path,
                                 "upstream_trainable": self.cfg.upstream.trainable,
                                 "normalize": self.cfg.upstream.normalize, "head_conf": vars(self.cfg.head).copy(),
                                 "labels": list(self.labels), "weights": model.trained_state(),
                                 "layer_weights": model.featurizer.layer_weights()}
        if self.tokenizer is not None:
            state["tokens"] = list(self.tokenizer.tokens)
            state["spm_model"] = torch.frombuffer(bytearray(self.tokenizer.model_bytes), dtype=torch.uint8)
        return state

    def load_model_state(self, model: SuperbModel, state: dict[str, Any]) -> None:
        _load_weights(model, state, "a checkpoint of this run")


def _load_weights(model: SuperbModel, state: dict[str, Any], where: str) -> None:
    """The trained weights of a checkpoint (the upstream's only when it was fine-tuned); what does not fit is an
    error."""
    missing, unexpected = model.load_state_dict(state["weights"], strict=False)
    missing = [k for k in missing if state["upstream_trainable"] or not k.startswith("upstream.")]
    if missing or unexpected:
        raise CheckpointError(f"{where}: weights do not fit the model built from its config and upstream "
                              f"{model.upstream.spec}: missing {missing[:5]}, unexpected {unexpected[:5]}")


@dataclass
class LoadedSuperb:
    model: SuperbModel
    task: str
    tokenizer: Tokenizer | None
    labels: list[str]
    layer_weights: list[float]


def load_superb(path: str, upstream: str = "", device: str | torch.device = "cpu") -> LoadedSuperb:
    """A checkpoint of this task (model in eval mode). `upstream` replaces the upstream path stored in it (when the
    checkpoint or the upstream moved)."""
    state = read_task_checkpoint(path, "superb", "a SUPERB checkpoint of wavlm.bin.train_superb")
    task = state["superb_task"]
    up = load_upstream(upstream or state["upstream"], bool(state["upstream_trainable"]))
    tok = Tokenizer(state["spm_model"].numpy().tobytes()) if "spm_model" in state else None
    head_cfg = SuperbHeadConfig(**state["head_conf"])
    num_out = len(tok) if tok is not None else len(state["labels"])
    model = SuperbModel(up, build_head(task, head_cfg, up.dim, num_out), bool(state["normalize"]))
    _load_weights(model, state, path)
    return LoadedSuperb(model.to(device).eval(), task, tok, list(state["labels"]), list(state["layer_weights"]))


class SuperbFrameClassifier(torch.nn.Module):
    """An SD model of ours (SuperbModel with a FrameHead) behind the frame-classifier interface of
    wavlm.models.frame_classifier: `(wav, lengths=None) -> .logits [B, T, speakers], .lengths`."""

    def __init__(self, model: SuperbModel, labels: list[str]):
        super().__init__()
        self.model, self.labels = model, labels

    @property
    def upstream(self) -> torch.nn.Module:
        return self.model.upstream

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def frame_shift(self) -> int:
        return self.upstream.frame_shift

    def frames(self, samples: int) -> int:
        return self.upstream.frames(samples)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> FrameClassifierOutput:
        x, frames = self.model.features(wav, lengths)
        return FrameClassifierOutput(self.model.head.logits(x, frames), frames)


def load_sd_frame_classifier(path: str, upstream: str = "") -> torch.nn.Module:
    """Our SD checkpoint as a frame classifier. With a linear head (head.rnn_layers 0) on a WavLM upstream it is
    Hugging Face's WavLMForAudioFrameClassification, and loads as that class (FrameClassifier, which exports to
    such a dir); any other head or upstream runs behind the same interface (SuperbFrameClassifier)."""
    sb = load_superb(path, upstream)
    if sb.task != "sd":
        raise CheckpointError(f"{path}: a SUPERB {sb.task} checkpoint, not a speaker diarization (sd) one")
    head = sb.model.head
    assert isinstance(head, FrameHead)
    if head.rnn is not None or not isinstance(sb.model.upstream, WavLMUpstream):
        return SuperbFrameClassifier(sb.model, sb.labels).eval()
    fc = FrameClassifier(sb.model.upstream, len(sb.labels), labels=sb.labels)
    fc.featurizer = sb.model.featurizer
    fc.head = head.linear
    return fc.eval()
