#!/usr/bin/env bash
# Usage: utils/split_data.sh [--per-utt] <data-dir> <num-parts>   (writes <data-dir>/split<N>[utt]/{1..N})
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir split --help).
set -euo pipefail
exec python -m wavlm.bin.datadir split "$@"
