#!/usr/bin/env bash
# Usage: utils/subset_data_dir.sh [--first|--last|--shortest N | --utt-list F | --spk-list F] [N] <src> <dest>
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir subset --help).
set -euo pipefail
exec python -m wavlm.bin.datadir subset "$@"
