#!/usr/bin/env bash
# Usage: utils/split_data.sh [--per-utt] <data-dir> <num-parts>   (writes <data-dir>/split<N>[utt]/{1..N})
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir split --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
exec python -m wavlm.bin.datadir split "$@"
