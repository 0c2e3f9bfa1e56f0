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

# tcmalloc, when installed (Debian/Ubuntu: libtcmalloc-minimal4; tools/install.sh adds it when it runs
# as root): glibc's malloc hands large freed blocks back to the kernel and page-faults them in again
# on the next batch, tcmalloc keeps them. Measured on our encoder (bench/bench_inference.py models,
# 2-core EPYC, fp32): 1 x 10 s 0.49 -> 0.48 s, 4 x 10 s 2.00 -> 1.82 s, 1 x 60 s 4.34 -> 3.65 s
# (jemalloc 5.3 was slower than glibc there). WAVLM_NO_TCMALLOC=1 keeps glibc's malloc.
if [ -z "${WAVLM_NO_TCMALLOC:-}" ] && [[ ":${LD_PRELOAD:-}:" != *libtcmalloc* ]]; then
  for _lib in /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4; do
    if [ -e "$_lib" ]; then
      export LD_PRELOAD="$_lib${LD_PRELOAD:+:$LD_PRELOAD}"
      export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=$((1 << 40))  # no "large alloc" lines in the logs
      break
    fi
  done
  unset _lib
fi
