"""Pre-training step throughput: our WavLM training step vs the same step on transformers.WavLMModel.

    tools/venv/bin/python bench/bench_pretrain.py [--sizes debug,base] [--batch 2x4] [--reps 3] [--threads 2]

One step = span masking, forward, HuBERT loss (cosine logits / 0.1 over the label embeddings on masked
frames + feature penalty), backward, AdamW update. Both models get the same weights, the same batch and
the same mask; the head and loss code are shared, so the ratio measures the encoders' forward+backward.
Repetitions are interleaved (the machine may be shared) and the best of each is reported. Prints
updates/s, audio seconds per second and the ratio ours / transformers for each size.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wavlm.models.checkpoint import cfg_to_hf, hf_state_dict  # noqa: E402
from wavlm.models.pretrain_head import WavLMForPretraining  # noqa: E402
from wavlm.models.wavlm import compute_mask_indices  # noqa: E402
from wavlm.tasks.common import load_model_config  # noqa: E402


class HFPretrain(torch.nn.Module):
    """transformers.WavLMModel with our pre-training head (same weights)."""

    def __init__(self, ours: WavLMForPretraining):
        super().__init__()
        import transformers

        cfg = transformers.WavLMConfig(**cfg_to_hf(ours.wavlm.cfg))
        self.hf = transformers.WavLMModel(cfg)
        missing = self.hf.load_state_dict(hf_state_dict(ours.wavlm), strict=False)
        assert not missing.unexpected_keys, missing.unexpected_keys
        self.head = ours  # only its final_proj / label embeddings are used

    def step_loss(self, wav, labels, mask):
        x = self.hf(wav, mask_time_indices=mask).last_hidden_state
        t = min(x.shape[1], labels.shape[1])
        m = mask[:, :t]
        return F.cross_entropy(self.head.logits(x[:, :t][m]), labels[:, :t][m], reduction="sum")


def ours_loss(model: WavLMForPretraining, wav, labels, mask):
    out = model(wav, None, labels, mask)
    return F.cross_entropy(out.logits_masked, out.targets_masked, reduction="sum") + 10 * out.features_pen


def timed_step(loss_fn, args: tuple, opt: torch.optim.Optimizer) -> float:
    t = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss_fn(*args).backward()
    opt.step()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="debug,base")
    p.add_argument("--batch", default="2x4", help="utterances x seconds")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    b, secs = a.batch.split("x")
    b, samples = int(b), int(float(secs) * 16000)
    print(f"batch {b} x {float(secs):g} s, {a.threads} threads, best of {a.reps} interleaved repetitions")
    print(f"{'size':8s} {'ours upd/s':>11s} {'hf upd/s':>10s} {'ours audio-s/s':>15s} {'hf audio-s/s':>13s} "
          f"{'ratio':>6s}")
    for size in a.sizes.split(","):
        cfg = load_model_config(size, {"dropout": 0.0, "attention_dropout": 0.0, "encoder_layerdrop": 0.0,
                                       "feature_grad_mult": 0.1})
        torch.manual_seed(0)
        ours = WavLMForPretraining(cfg, num_classes=500, final_dim=256).train()
        hf = HFPretrain(ours).train()
        rng = np.random.default_rng(0)
        wav = torch.from_numpy(rng.standard_normal((b, samples)).astype(np.float32))
        frames = int(ours.wavlm.output_lengths(torch.tensor([samples]))[0])
        labels = torch.from_numpy(rng.integers(0, 500, (b, frames)))
        mask = torch.from_numpy(compute_mask_indices((b, frames), None, 0.8, 10, min_masks=2, rng=rng))
        opt_o = torch.optim.AdamW(ours.parameters(), lr=1e-5)
        opt_h = torch.optim.AdamW(hf.hf.parameters(), lr=1e-5)
        best_o = best_h = float("inf")
        for _ in range(a.reps + 1):  # the first repetition warms up
            to = timed_step(ours_loss, (ours, wav, labels, mask), opt_o)
            th = timed_step(hf.step_loss, (wav, labels, mask), opt_h)
            best_o, best_h = min(best_o, to), min(best_h, th)
        audio = b * samples / 16000
        print(f"{size:8s} {1 / best_o:11.3f} {1 / best_h:10.3f} {audio / best_o:15.2f} {audio / best_h:13.2f} "
              f"{best_h / best_o:6.2f}")


if __name__ == "__main__":
    main()
