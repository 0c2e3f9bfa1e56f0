"""Command-line entry points: `python -m wavlm.bin.<name> --help`."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable


def setup_logging(verbose: int = 0) -> None:
    """Kaldi-like log lines on stderr: time, level, module:line, message."""
    logging.basicConfig(
        level=logging.DEBUG if verbose > 0 else logging.INFO,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def run_main(args: argparse.Namespace, run: Callable[[argparse.Namespace], None],
             errors: tuple[type[BaseException], ...] = (ValueError,)) -> int:
    """The body of a CLI's main(): logging (`args.verbose`), torch threads (`args.num_threads` when the CLI has
    it), then `run(args)`; an expected error (bad input, named in its message) is one ERROR line and exit 1."""
    setup_logging(getattr(args, "verbose", 0))
    if getattr(args, "num_threads", 0):
        import torch

        torch.set_num_threads(args.num_threads)
    try:
        run(args)
    except errors as e:
        logging.getLogger(run.__module__).error("%s", e)
        return 1
    return 0
