#!/usr/bin/env bash
# Usage: utils/copy_data_dir.sh [--utt-prefix P] [--spk-prefix P] [--utt-suffix S] [--spk-suffix S] <src> <dest>
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir copy --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir copy "$@"
