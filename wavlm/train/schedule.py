"""Learning-rate schedules as multipliers of the peak rate, by update number."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ScheduleConfig:
    kind: str = "linear"  # linear (warm-up then linear decay to 0, fairseq polynomial_decay), tri_stage, constant
    warmup_updates: int = 0
    # tri_stage (fairseq's fine-tuning schedule): phase fractions of max_updates, start/end scales
    phase_ratio: tuple[float, float, float] | list[float] | None = None
    init_lr_scale: float = 0.01
    final_lr_scale: float = 0.05
    hold_updates: int = 0
    decay_updates: int = 0


def lr_scale(cfg: ScheduleConfig, update: int, max_updates: int) -> float:
    """Multiplier of the peak learning rate for `update` (0-based, before the step is taken)."""
    if cfg.kind == "constant":
        return min(1.0, (update + 1) / cfg.warmup_updates) if cfg.warmup_updates else 1.0
    if cfg.kind == "linear":
        if cfg.warmup_updates and update < cfg.warmup_updates:
            return (update + 1) / cfg.warmup_updates
        span = max(1, max_updates - cfg.warmup_updates)
        return max(0.0, 1.0 - (update - cfg.warmup_updates) / span)
    if cfg.kind == "tri_stage":
        if cfg.phase_ratio is not None:
            if abs(sum(cfg.phase_ratio) - 1.0) > 1e-6:
                raise ValueError(f"schedule.phase_ratio {cfg.phase_ratio} must sum to 1")
            warm, hold, decay = (int(r * max_updates) for r in cfg.phase_ratio)
        else:
            warm, hold, decay = cfg.warmup_updates, cfg.hold_updates, cfg.decay_updates
        if update < warm:
            return cfg.init_lr_scale + (1.0 - cfg.init_lr_scale) * update / max(1, warm)
        if update < warm + hold:
            return 1.0
        if update < warm + hold + decay:
            k = -math.log(cfg.final_lr_scale) / max(1, decay)
            return math.exp(-k * (update - warm - hold))
        return cfg.final_lr_scale
    raise ValueError(f"unknown schedule kind {cfg.kind!r} (linear, tri_stage, constant)")
