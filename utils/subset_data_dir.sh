#!/usr/bin/env bash
# Usage: utils/subset_data_dir.sh [--first|--last|--shortest N | --utt-list F | --spk-list F
#                                  | [--speakers M] [--per-spk N]] [N] <src> <dest>
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir subset --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir subset "$@"
