"""Convert a WavLM checkpoint between formats.

    python -m wavlm.bin.export --to hf IN OUT_DIR        # Hugging Face WavLMModel directory
    python -m wavlm.bin.export --to official IN OUT.pt   # Microsoft's {'cfg', 'model'} format (= ours)
    python -m wavlm.bin.export --to hf_frame_classifier IN OUT_DIR   # WavLMForAudioFrameClassification directory

IN is anything `wavlm.load_model` reads: a released `.pt`, a Hugging Face directory, our checkpoint; for
hf_frame_classifier, anything `wavlm.load_frame_classifier` reads.
"""

from __future__ import annotations

import argparse
import logging
import sys

import wavlm
from wavlm.models.checkpoint import CheckpointError, load_model, save_checkpoint, save_hf
from wavlm.models.frame_classifier import export_frame_classifier

logger = logging.getLogger("wavlm.export")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavlm.bin.export",
        description="Convert a WavLM checkpoint to a Hugging Face directory or Microsoft's .pt format.",
    )
    p.add_argument("--to", required=True, choices=["hf", "official", "hf_frame_classifier"], help="output format")
    p.add_argument(
        "--weights_only",
        default=True,
        action=argparse.BooleanOptionalAction,
        help="load .pt files with torch.load(weights_only=True) (default); disable only for trusted files",
    )
    p.add_argument("input", help="released .pt, Hugging Face dir, or our checkpoint")
    p.add_argument("output", help="output directory (--to hf, hf_frame_classifier) or file (--to official)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.to == "hf_frame_classifier":
            export_frame_classifier(wavlm.load_frame_classifier(args.input), args.output)
        elif args.to == "hf":
            save_hf(load_model(args.input, weights_only=args.weights_only), args.output)
        else:
            save_checkpoint(args.output, load_model(args.input, weights_only=args.weights_only))
    except CheckpointError as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s (%s format)", args.output, args.to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
