#!/usr/bin/env bash
# Sourced by every recipe's path.sh and by the utils/ scripts that run Python (so that they work when
# called directly, as Kaldi's utils do): activates the repository's tools/venv, sets the C locale
# (Kaldi data dirs are sorted bytewise) and defines log(). The repository is found from this file's
# own location, through symlinks (egs/*/*/utils -> ../../../utils).
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
if [ ! -x "$MAIN_ROOT/tools/venv/bin/python" ]; then
  echo "tools/venv is missing: run 'make -C $MAIN_ROOT install' (or $MAIN_ROOT/tools/install.sh) first" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$MAIN_ROOT/tools/venv/bin/activate"
export LC_ALL=C PYTHONUNBUFFERED=1 PYTHONIOENCODING=utf-8
# shellcheck source=utils/log.sh
. "$MAIN_ROOT/utils/log.sh"
