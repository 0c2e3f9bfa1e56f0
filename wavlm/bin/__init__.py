"""Command-line entry points: `python -m wavlm.bin.<name> --help`."""
from __future__ import annotations

import logging
import sys


def setup_logging(verbose: int = 0) -> None:
    """Kaldi-like log lines on stderr: time, level, module:line, message."""
    logging.basicConfig(
        level=logging.DEBUG if verbose > 0 else logging.INFO,
        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
