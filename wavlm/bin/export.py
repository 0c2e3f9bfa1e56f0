"""Convert a WavLM checkpoint between formats.

    python -m wavlm.bin.export --to hf IN OUT_DIR        # Hugging Face WavLMModel directory
    python -m wavlm.bin.export --to official IN OUT.pt   # Microsoft's {'cfg', 'model'} format (= ours)
    python -m wavlm.bin.export --to hf_frame_classifier IN OUT_DIR   # WavLMForAudioFrameClassification directory
    python -m wavlm.bin.export --to onnx IN OUT.onnx [--layers all|N[,M...]] [--opset K]   # encoder graph

--to onnx writes the encoder as an ONNX graph: inputs `wav` float [B, S], `lengths` int64 [B] (samples), outputs
`hidden_state_<i>` for the chosen hidden states (0 = encoder input .. L = last layer; all by default) and
`frame_lengths`; batch and length are dynamic (see wavlm.models.onnx_export).

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
from wavlm.models.onnx_export import OnnxExportError, export_onnx

logger = logging.getLogger("wavlm.export")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wavlm.bin.export",
        description="Convert a WavLM checkpoint to a Hugging Face directory, Microsoft's .pt format or an ONNX graph.",
    )
    p.add_argument(
        "--to", required=True, choices=["hf", "official", "hf_frame_classifier", "onnx"], help="output format"
    )
    p.add_argument("--layers", help="--to onnx: hidden states to output, 'all' (default) or 'N[,M...]' (0..L)")
    p.add_argument("--opset", type=int, help="--to onnx: ONNX opset (default 18, the lowest supported)")
    p.add_argument(
        "--weights_only",
        default=True,
        action=argparse.BooleanOptionalAction,
        help="load .pt files with torch.load(weights_only=True) (default); disable only for trusted files",
    )
    p.add_argument("input", help="released .pt, Hugging Face dir, or our checkpoint")
    p.add_argument("output", help="output directory (--to hf, hf_frame_classifier) or file (--to official, onnx)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.to != "onnx" and (args.layers is not None or args.opset is not None):
        parser.error("--layers and --opset apply to --to onnx only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.to == "hf_frame_classifier":
            export_frame_classifier(wavlm.load_frame_classifier(args.input), args.output)
        elif args.to == "onnx":
            export_onnx(load_model(args.input, weights_only=args.weights_only), args.output, args.layers, args.opset)
        elif args.to == "hf":
            save_hf(load_model(args.input, weights_only=args.weights_only), args.output)
        else:
            save_checkpoint(args.output, load_model(args.input, weights_only=args.weights_only))
    except (CheckpointError, OnnxExportError) as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s (%s format)", args.output, args.to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
