"""A tiny regression task for trainer tests; also runnable: python tests/toy_task.py EXP MAX_UPDATES [k=v]."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wavlm.train.trainer import Trainer, TrainerConfig


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    ids: list[str]


class ToyTask:
    """y = x @ w + noise; 40 examples in batches of 4, shuffled per epoch; the model has dropout.
    `nan_at`: the loss of a batch holding this example is NaN; `overflow_at`: its gradients overflow (x 1e36)
    the first time it is seen; `valid_script`: validation returns these values of `mse` in turn."""

    best_metric = ("mse", "min")

    def __init__(self, nan_at: int = -1, dropout: float = 0.3, overflow_at: int = -1,
                 valid_script: list[float] | None = None, valid_noise: float = 0.0):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((40, 8)).astype(np.float32)
        self.y = (self.x @ rng.standard_normal((8, 1)) + 0.1 * rng.standard_normal((40, 1))).astype(np.float32)
        self.nan_at, self.overflow_at = nan_at, overflow_at
        self.dropout = dropout
        self.valid_script = list(valid_script or [])
        self.valid_noise = valid_noise  # validation draws from the global RNG (as masking does in pre-training)
        self.seen_updates: list[int] = []  # the update number of every attempt (before_update)
        self.dtypes: set[torch.dtype] = set()  # dtypes of the model's outputs in training

    def before_update(self, model, updates: int) -> None:
        self.seen_updates.append(updates)

    def build_model(self) -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(self.dropout), torch.nn.Linear(16, 1))

    def train_batches(self, epoch: int) -> list[Any]:
        order = np.random.default_rng(epoch).permutation(40)
        return [order[i:i + 4].tolist() for i in range(0, 40, 4)]

    def load_batch(self, idx: list[int], seed: int) -> Batch:
        time.sleep(float(os.environ.get("WAVLM_TOY_SLEEP", "0")))  # lets a test kill a run mid-way
        noise = np.random.default_rng(seed).standard_normal((len(idx), 8)).astype(np.float32) * 0.01
        return Batch(torch.from_numpy(self.x[idx] + noise), torch.from_numpy(self.y[idx]), [f"ex{i}" for i in idx])

    def loss(self, model, batch: Batch):
        pred = model(batch.x)
        self.dtypes.add(pred.dtype)
        if f"ex{self.nan_at}" in batch.ids:
            pred = pred * float("nan")
        if f"ex{self.overflow_at}" in batch.ids:
            from wavlm.models.wavlm import GradMultiply

            self.overflow_at = -1
            pred = GradMultiply.apply(pred, 1e36)
        loss = ((pred.float() - batch.y) ** 2).sum()
        return loss, len(batch.ids), {"loss": loss.item()}

    def valid_batches(self) -> list[Any]:
        return [list(range(0, 20)), list(range(20, 40))]

    def valid_step(self, model, batch: Batch) -> dict[str, float]:
        noise = self.valid_noise * float(torch.rand(()))
        return {"se": float(((model(batch.x) - batch.y) ** 2).sum()) + noise, "n": len(batch.ids)}

    def valid_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        if self.valid_script:
            return {"mse": self.valid_script.pop(0)}
        return {"mse": sums["se"] / sums["n"]}

    def model_state(self, model) -> dict[str, Any]:
        return {"model": model.state_dict()}

    def load_model_state(self, model, state) -> None:
        model.load_state_dict(state["model"])


def train(exp: str, max_updates: int, **kw: Any) -> Trainer:
    from wavlm.config import from_dict
    from wavlm.train.distributed import cleanup, init

    task = ToyTask(nan_at=int(kw.pop("nan_at", -1)), dropout=float(kw.pop("dropout", 0.3)),
                   overflow_at=int(kw.pop("overflow_at", -1)), valid_script=kw.pop("valid_script", None),
                   valid_noise=float(kw.pop("valid_noise", 0.0)))
    cfg = from_dict(TrainerConfig, {"max_updates": max_updates, "save_interval_updates": 5, "log_interval": 5,
                                    "valid_interval_updates": 10, "num_workers": 0, "keep_last": 2,
                                    "optim": {"lr": 0.01}, "schedule": {"warmup_updates": 3}, **kw})
    t = Trainer(cfg, task, task.build_model(), exp, init("cpu"))
    t.train()
    cleanup()
    return t


if __name__ == "__main__":
    extra = dict(a.split("=", 1) for a in sys.argv[3:])
    train(sys.argv[1], int(sys.argv[2]), **{k: float(v) if "." in v else int(v) for k, v in extra.items()})
