"""Train a SUPERB downstream model on a frozen upstream (wavlm/tasks/superb.py): PR, ASR, SID or ASV.

    python -m wavlm.bin.train_superb --config conf/pr.yaml --exp_dir exp/wavlm_base/pr \\
        upstream.path=/models/WavLM-Base.pt data.train=data/pr/train_clean_100 data.valid=data/pr/dev_clean \\
        data.tokenizer=exp/units_phone
    torchrun --nproc_per_node 4 -m wavlm.bin.train_superb ...

Resumes from the newest checkpoint in --exp_dir. When training ends, the learned layer weights of the best
checkpoint (softmax of the weighted sum: which hidden states the task uses) are written to
EXP/layer_weights.txt (`layer weight` lines) and plotted in EXP/layer_weights.png.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from wavlm.tasks.superb import SuperbConfig, SuperbTask
from wavlm.train.run import parser, run

log = logging.getLogger(__name__)


def write_layer_weights(weights: list[float], out_dir: str | os.PathLike, title: str = "") -> None:
    """EXP/layer_weights.txt and .png: the weight of each hidden state (0 = the encoder input)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wavlm.data.datadir import atomic_write_text
    from wavlm.metrics.sv import write_bytes_atomic

    out = Path(out_dir)
    atomic_write_text(out / "layer_weights.txt", "".join(f"{i} {w:.6f}\n" for i, w in enumerate(weights)))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(weights) + 1.5), 3.0))
    ax.bar(range(len(weights)), weights, color="tab:blue")
    ax.axhline(1.0 / len(weights), color="grey", linestyle="--", linewidth=1, label="equal weights")
    ax.set_xlabel("hidden state (0: encoder input)")
    ax.set_ylabel("softmax weight")
    ax.set_xticks(range(len(weights)))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(out / "layer_weights.png", buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    rc = run(SuperbTask, SuperbConfig, argv, __doc__)
    args = parser(__doc__).parse_args(argv)
    best = Path(args.exp_dir) / "checkpoint_best.pt"
    png = Path(args.exp_dir) / "layer_weights.png"
    fresh = png.is_file() and png.stat().st_mtime_ns >= best.stat().st_mtime_ns if best.is_file() else True
    if rc == 0 and int(os.environ.get("RANK", "0")) == 0 and not fresh:
        from wavlm.models.checkpoint import torch_load

        state = torch_load(best)
        write_layer_weights(state["layer_weights"], args.exp_dir,
                            f"{state['superb_task']}: {Path(state['upstream']).name} "
                            f"(update {state['validation']['updates']})")
        log.info("layer weights of %s: %s", best, " ".join(f"{w:.3f}" for w in state["layer_weights"]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
