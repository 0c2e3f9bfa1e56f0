#!/usr/bin/env bash
# Usage: utils/validate_data_dir.sh [--audio] [--sample-rate 16000] [--channels N] [--text] <data-dir>
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir validate --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir validate "$@"
