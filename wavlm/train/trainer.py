"""The one trainer every task uses: DDP (torchrun), AMP, gradient accumulation, atomic checkpoints,
exact resume, tensorboard, periodic validation.

The trainer knows no task. A task gives it:
  * `train_batches(epoch) -> list`: this epoch's batch descriptors (e.g. lists of utterance ids), a
    deterministic function of the epoch;
  * `load_batch(descriptor, seed) -> batch`: reads and collates one batch (runs in DataLoader workers);
    all its randomness (crops, mixing) comes from `seed`;
  * `loss(model, batch) -> (loss_sum, sample_size, logs)`: logs are sums, reduced over ranks;
  * `valid_batches() -> list` and `valid_step(model, batch) -> dict of sums`, `valid_metrics(sums) -> dict`;
  * `model_state(model) -> dict` / `load_model_state(model, state)`: what goes into a checkpoint
    (our checkpoints keep the encoder under the official key names with an official-style `cfg`);
  * `best_metric = (name, "min" | "max")`: the validation metric that picks the best checkpoint (ASR: WER,
    CSS: SI-SDRi, ...); `trainer.best_metric`/`best_metric_mode` override it;
  * optionally `before_update(model, updates)` (e.g. to unfreeze layers after N updates),
    `param_groups(model) -> [{"params": [...], "lr_scale": x}, ...]` (e.g. a lower rate for a pre-trained
    encoder than for a new head) and `find_unused_parameters: bool` (True for models that skip parameters
    in some steps: layerdrop, a Transformer frozen for the first updates; DDP then searches the graph).

Checkpoints (see wavlm.train.checkpoint): every validation that ranks among the `keep_best` (or
`average_best`) best so far stores its model in nbest/, `checkpoint_best.pt` is the best of them and, with
`average_best: N`, `checkpoint_avg.pt` their mean; recipes use one of these, never simply the last.

AMP: `amp: bf16` autocasts; `amp: fp16` also scales the loss (torch's GradScaler). An update whose gradients
overflow is skipped by the scaler and, as in fairseq, does not count: the update number and the learning
rate schedule stay where they were; a loss scale falling under `min_loss_scale` is an error.

Exact resume: every update re-seeds the global RNGs from (seed, update, rank) and every batch is loaded
with a seed from (seed, epoch, index), so a run killed at any point and resumed from its last
checkpoint (model, optimizer, grad scaler, data position) produces the same weights as an
uninterrupted one (bitwise on CPU; tested).
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from wavlm.config import to_dict
from wavlm.train import checkpoint as ckpt
from wavlm.train.distributed import Dist, all_reduce_sum, barrier
from wavlm.train.schedule import ScheduleConfig, lr_scale

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    lr: float = 5e-4
    betas: tuple[float, float] | list[float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    clip_norm: float = 10.0  # 0 disables clipping


@dataclass
class TrainerConfig:
    max_updates: int = 1000
    update_freq: int = 1  # gradient accumulation: emulates update_freq x more GPUs
    amp: str = "none"  # none, fp16 (with a grad scaler), bf16
    seed: int = 1
    log_interval: int = 10
    save_interval_updates: int = 1000
    keep_last: int = 3
    valid_interval_updates: int = 1000
    best_metric: str = ""  # validation metric choosing checkpoint_best.pt; "" = the task's own (fairseq's
    best_metric_mode: str = ""  # best_checkpoint_metric); mode min or max, "" = the task's
    keep_best: int = 1  # validated models kept in nbest/
    average_best: int = 0  # N > 1: also write checkpoint_avg.pt, the mean of the N best (ESPnet's nbest averaging)
    # fp16 loss scaling as fairseq's defaults (torch's GradScaler starts at 65536 and grows every 2000 steps)
    fp16_init_scale: float = 128.0
    fp16_scale_window: int = 0  # updates without overflow before the scale doubles; 0: 2**14 / (ranks x update_freq)
    min_loss_scale: float = 1e-4  # fp16: stop when the loss scale falls below this
    num_workers: int = 2
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


class Task(Protocol):
    def train_batches(self, epoch: int) -> list[Any]: ...
    def load_batch(self, descriptor: Any, seed: int) -> Any: ...
    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, float, dict[str, float]]: ...
    def valid_batches(self) -> list[Any]: ...
    def valid_step(self, model: torch.nn.Module, batch: Any) -> dict[str, float]: ...
    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]: ...
    best_metric: tuple[str, str]
    def model_state(self, model: torch.nn.Module) -> dict[str, Any]: ...
    def load_model_state(self, model: torch.nn.Module, state: dict[str, Any]) -> None: ...


class _Batches(torch.utils.data.Dataset):
    """This rank's batches [start:] of one epoch. Each is loaded with a seed from its index in the
    epoch's global batch list, so content and order depend neither on the number of DataLoader workers
    nor on how many ranks share the epoch."""

    def __init__(self, task: Task, descriptors: list[Any], start: int, seed: int, rank: int, world: int):
        self.task, self.descriptors, self.start, self.seed = task, descriptors, start, seed
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return len(self.descriptors) - self.start

    def __getitem__(self, i: int) -> tuple[int, Any]:
        j = self.start + i
        return j, self.task.load_batch(self.descriptors[j], self.seed + self.rank + j * self.world)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _mix(*xs: int) -> int:
    """A deterministic 63-bit seed from integers."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (x + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & (2**63 - 1)
    return h


class Trainer:
    def __init__(self, cfg: TrainerConfig, task: Task, model: torch.nn.Module, exp_dir: str | Path,
                 dist_info: Dist | None = None):
        self.cfg, self.task, self.exp_dir = cfg, task, Path(exp_dir)
        self.dist = dist_info or Dist()
        if cfg.amp not in ("none", "fp16", "bf16"):
            raise ValueError(f"trainer.amp must be none, fp16 or bf16, got {cfg.amp!r}")
        if cfg.amp == "fp16" and self.dist.device.type != "cuda":
            log.warning("trainer.amp=fp16 on %s: correct but slow (meant for GPUs; tests use it)",
                        self.dist.device.type)
        self.best_metric = self._best_metric()
        self.n_best = max(1, cfg.keep_best, cfg.average_best)
        self.best: list[dict[str, Any]] = []  # {"updates", "value"}, best first
        self.model = model.to(self.dist.device)
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.dist.local_rank]
                                            if self.dist.device.type == "cuda" else None,
                                            find_unused_parameters=bool(getattr(task, "find_unused_parameters",
                                                                                False)))
                    if self.dist.world_size > 1 else None)
        groups = getattr(task, "param_groups", None)
        params = groups(self.model) if groups else [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                           weight_decay=o.weight_decay)
        window = cfg.fp16_scale_window or max(1, 2**14 // (self.dist.world_size * cfg.update_freq))
        self.scaler = torch.amp.GradScaler(self.dist.device.type, init_scale=cfg.fp16_init_scale,
                                           growth_interval=window, enabled=cfg.amp == "fp16")
        self.updates, self.epoch, self.batch_index = 0, 1, 0
        self.writer = None
        if self.dist.is_main:
            self._open_writer()

    def _open_writer(self, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=purge_step)

    # ---- state ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        s = dict(self.task.model_state(self.model))
        s["optimizer"] = self.optimizer.state_dict()
        s["scaler"] = self.scaler.state_dict()
        s["progress"] = {"updates": self.updates, "epoch": self.epoch, "batch_index": self.batch_index}
        s["best"] = [dict(e) for e in self.best]
        s["trainer_config"] = to_dict(self.cfg)
        return s

    def _best_metric(self) -> tuple[str, str]:
        name, mode = getattr(self.task, "best_metric", ("loss", "min"))
        if self.cfg.best_metric and self.cfg.best_metric != name:
            if not self.cfg.best_metric_mode:
                raise ValueError(f"trainer.best_metric={self.cfg.best_metric}: also set trainer.best_metric_mode "
                                 "(min or max)")
            name = self.cfg.best_metric
        mode = self.cfg.best_metric_mode or mode
        if mode not in ("min", "max"):
            raise ValueError(f"trainer.best_metric_mode must be min or max, got {mode!r}")
        return name, mode

    def resume(self) -> bool:
        """Resume from the newest loadable checkpoint in exp_dir; False when starting fresh."""
        found = ckpt.latest(self.exp_dir)
        if found is None:
            return False
        path, state = found
        self.task.load_model_state(self.model, state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        p = state["progress"]
        self.updates, self.epoch, self.batch_index = p["updates"], p["epoch"], p["batch_index"]
        self.best = [dict(e) for e in state.get("best", [])][: self.n_best]
        if self.writer is not None:
            # what an interrupted run logged after this checkpoint is redone now: tensorboard drops the events
            # of steps > updates (without this, resumed curves show those steps twice)
            self.writer.close()
            self._open_writer(purge_step=self.updates + 1)
        if self.dist.is_main and self.best:
            # a validation after this checkpoint may have stored a model that the resumed run will store again
            ckpt.prune_nbest(self.exp_dir, self.best)
            ckpt.publish_best(self.exp_dir, self.best, self.cfg.average_best > 1)
        log.info("resumed from %s: update %d, epoch %d, batch %d", path, self.updates, self.epoch,
                 self.batch_index)
        return True

    def save(self) -> None:
        if self.dist.is_main:
            path = ckpt.save(self.state(), self.exp_dir, self.updates, self.cfg.keep_last)
            # nbest/ models that left the N best go only now, once a checkpoint that no longer lists them exists
            ckpt.prune_nbest(self.exp_dir, self.best)
            log.info("saved %s", path)
        barrier(self.dist)

    def _update_best(self, metrics: dict[str, float]) -> None:
        """Rank this validation among the N best by the best metric; store its model if it is one of them."""
        name, mode = self.best_metric
        if name not in metrics:
            raise ValueError(f"best checkpoint metric {name!r} is not among the validation metrics "
                             f"{sorted(metrics)}; set trainer.best_metric")
        value = float(metrics[name])

        def key(e: dict[str, Any]) -> tuple[float, int]:
            v = e["value"] if math.isfinite(e["value"]) else math.inf * (1 if mode == "min" else -1)
            return (v if mode == "min" else -v, e["updates"])  # ties: the earlier model

        entry = {"updates": self.updates, "value": value}
        ranked = sorted([e for e in self.best if e["updates"] != self.updates] + [entry], key=key)[: self.n_best]
        if entry not in ranked:
            return
        self.best = ranked
        if self.dist.is_main:
            state = dict(self.task.model_state(self.model))
            state["validation"] = {"updates": self.updates, "metric": name, **metrics}
            ckpt.save_nbest(state, self.exp_dir, self.updates)
            ckpt.publish_best(self.exp_dir, self.best, self.cfg.average_best > 1)
            log.info("update %d: %s %.4g is the best so far%s", self.updates, name, value,
                     "" if ranked[0] is entry else f" number {ranked.index(entry) + 1}")

    # ---- data ----------------------------------------------------------------------------------
    def _microbatches(self) -> Iterator[Any]:
        """Batches from the saved position on, epoch after epoch; updates self.epoch/batch_index
        to the position after the batch just yielded."""
        while True:
            descriptors = self.task.train_batches(self.epoch)
            n = len(descriptors) // self.dist.world_size * self.dist.world_size
            if n == 0:
                raise RuntimeError(f"epoch {self.epoch} has {len(descriptors)} batches, fewer than "
                                   f"{self.dist.world_size} ranks; add data or lower the batch size")
            mine = descriptors[self.dist.rank:n:self.dist.world_size]
            seed = _mix(self.cfg.seed, self.epoch)
            loader = torch.utils.data.DataLoader(
                _Batches(self.task, mine, self.batch_index, seed, self.dist.rank, self.dist.world_size),
                batch_size=None, shuffle=False,
                num_workers=self.cfg.num_workers, persistent_workers=False,
                pin_memory=self.dist.device.type == "cuda",
                # its own generator, so starting an epoch does not draw from the global RNG
                generator=torch.Generator().manual_seed(seed))
            for j, batch in loader:
                self.batch_index = j + 1
                yield batch
            self.epoch += 1
            self.batch_index = 0

    # ---- training ------------------------------------------------------------------------------
    def train(self) -> None:
        cfg = self.cfg
        self.resume()
        if self.updates >= cfg.max_updates:
            log.info("already trained for %d updates", self.updates)
            if not (self.exp_dir / "checkpoint_best.pt").is_file():  # a run from before best checkpoints
                self._update_best(self.validate())
                barrier(self.dist)
            return
        module = self.ddp or self.model
        batches = self._microbatches()
        stats: dict[str, float] = {}
        t0 = time.time()
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_updates, initial=self.updates, disable=not self.dist.is_main,
                   desc="updates", mininterval=5, dynamic_ncols=True)
        while self.updates < cfg.max_updates:
            _seed_everything(_mix(cfg.seed, self.updates, self.dist.rank, 7))
            before = getattr(self.task, "before_update", None)
            if before is not None:
                before(self.model, self.updates)
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            sample_size, logs = 0.0, {}
            for k in range(cfg.update_freq):
                batch = next(batches)
                sync = k == cfg.update_freq - 1 or self.ddp is None
                with self._maybe_no_sync(sync), self._autocast():
                    loss, n, batch_logs = self.task.loss(module, batch)
                # under fp16 an overflowing loss is the scaler's business (the step is skipped, see below)
                if not self.scaler.is_enabled() and not torch.isfinite(loss):
                    ids = getattr(batch, "ids", None)
                    raise FloatingPointError(
                        f"non-finite loss {loss.item()} at update {self.updates + 1} (epoch {self.epoch}, "
                        f"batch {self.batch_index}{', utterances ' + ' '.join(ids[:8]) if ids else ''}); "
                        "no checkpoint was written. Lower the learning rate, enable gradient clipping, "
                        "or check these utterances.")
                self.scaler.scale(loss).backward()
                sample_size += n
                for key, v in batch_logs.items():
                    logs[key] = logs.get(key, 0.0) + float(v)
            total = all_reduce_sum([sample_size], self.dist)[0]
            lr = cfg.optim.lr * lr_scale(cfg.schedule, self.updates, cfg.max_updates)
            for g in self.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            self.scaler.unscale_(self.optimizer)
            # DDP averages gradients over ranks; turn the sum of loss sums into a mean per sample
            scale = self.dist.world_size / max(total, 1.0)
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
            gnorm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), cfg.optim.clip_norm if cfg.optim.clip_norm > 0 else math.inf)
            loss_scale = self.scaler.get_scale() if self.scaler.is_enabled() else 1.0
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scaler.is_enabled() and self.scaler.get_scale() < loss_scale:
                # inf/NaN gradients: the scaler skipped the step and lowered the scale; the update does not count
                stats["skipped"] = stats.get("skipped", 0.0) + 1
                log.info("update %d: gradient overflow at loss scale %g, step skipped", self.updates + 1,
                         loss_scale)
                if self.scaler.get_scale() < cfg.min_loss_scale:
                    raise FloatingPointError(
                        f"fp16 loss scale fell below trainer.min_loss_scale={cfg.min_loss_scale} at update "
                        f"{self.updates + 1}: the gradients overflow at every scale. Lower the learning rate, "
                        "enable gradient clipping or use trainer.amp=bf16.")
                continue
            self.updates += 1
            bar.update(1)
            logs["sample_size"] = sample_size
            keys = sorted(logs)
            for key, v in zip(keys, all_reduce_sum([logs[k] for k in keys], self.dist), strict=True):
                stats[key] = stats.get(key, 0.0) + v
            stats["gnorm"] = stats.get("gnorm", 0.0) + float(gnorm)
            stats["lr"] = lr
            stats["n"] = stats.get("n", 0.0) + 1
            if self.updates % cfg.log_interval == 0 or self.updates == cfg.max_updates:
                self._log_train(stats, time.time() - t0)
                stats, t0 = {}, time.time()
            if self.updates % cfg.valid_interval_updates == 0 or self.updates == cfg.max_updates:
                self._update_best(self.validate())
            if self.updates % cfg.save_interval_updates == 0 or self.updates == cfg.max_updates:
                self.save()
        bar.close()
        if self.writer is not None:
            self.writer.flush()

    def _log_train(self, stats: dict[str, float], seconds: float) -> None:
        n = stats.pop("n")
        lr = stats.pop("lr")
        skipped = stats.pop("skipped", 0.0)
        gnorm = stats.pop("gnorm") / n
        size = stats.get("sample_size", 1.0) or 1.0
        metrics = {"loss": stats.get("loss", 0.0) / size, "gnorm": gnorm, "lr": lr,
                   "updates_per_s": n / max(seconds, 1e-9)}
        if self.scaler.is_enabled():
            metrics.update(loss_scale=self.scaler.get_scale(), skipped=skipped)
        for key, v in stats.items():
            if key.startswith("acc_"):
                metrics[key] = v / max(stats.get("count_" + key[4:], 1.0), 1.0)
        log.info("update %d | %s", self.updates, " | ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"train/{k}", v, self.updates)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        batches = self.task.valid_batches()
        for j in range(self.dist.rank, len(batches), self.dist.world_size):
            # the same seeds (masks, crops) at every validation and for any number of ranks, so that validations
            # compare models, not random draws (checkpoint_best is chosen by them)
            _seed_everything(_mix(self.cfg.seed, j, 13))
            batch = self.task.load_batch(batches[j], _mix(self.cfg.seed, 0, j, 11))
            with self._autocast():
                for k, v in self.task.valid_step(self.model, batch).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
        keys = sorted(sums)
        sums = dict(zip(keys, all_reduce_sum([sums[k] for k in keys], self.dist), strict=True))
        metrics = self.task.valid_metrics(sums) if sums else {}
        if metrics:
            log.info("valid at update %d | %s", self.updates,
                     " | ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"valid/{k}", v, self.updates)
        self.model.train()
        return metrics

    def _autocast(self):
        if self.cfg.amp == "none":
            return torch.autocast(self.dist.device.type, enabled=False)
        dtype = torch.float16 if self.cfg.amp == "fp16" else torch.bfloat16
        return torch.autocast(self.dist.device.type, dtype=dtype)

    def _maybe_no_sync(self, sync: bool):
        import contextlib

        return contextlib.nullcontext() if sync else self.ddp.no_sync()
