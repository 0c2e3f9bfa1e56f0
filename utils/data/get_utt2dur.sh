#!/usr/bin/env bash
# Usage: utils/data/get_utt2dur.sh <data-dir>   (writes <data-dir>/utt2dur; skips if it is complete)
# Thin wrapper: the logic lives in wavlm/data/datadir.py (python -m wavlm.bin.datadir utt2dur --help).
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../path_common.sh"
[ $# -eq 1 ] || { sed -n 2p "$0" >&2; exit 1; }
if [ -s "$1/utt2dur" ] && [ "$1/utt2dur" -nt "$1/wav.scp" ] && [ "$1/utt2dur" -nt "$1/utt2spk" ] &&
   [ ! "$1/segments" -nt "$1/utt2dur" ]; then
  echo "$0: $1/utt2dur is up to date" >&2
  exit 0
fi
exec python -m wavlm.bin.datadir utt2dur "$1"
