#!/usr/bin/env bash
# Usage: utils/combine_data.sh <dest-data-dir> <src-data-dir1> [<src-data-dir2> ...]
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir combine --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir combine "$@"
