#!/usr/bin/env bash
# Usage: utils/fix_data_dir.sh <data-dir>   (keeps utterances present in every file; backup in <data-dir>/.backup)
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir fix --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir fix "$@"
