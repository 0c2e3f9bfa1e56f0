#!/usr/bin/env bash
# Creates tools/venv and installs everything the project needs. Idempotent: a second run checks a
# stamp (hash of the requirement files, setup.py and TORCH_SPEC) and returns in seconds.
#
#   tools/install.sh                                   # CPU torch 2.13.0 (default)
#   TORCH_SPEC="torch==2.13.0" PIP_EXTRA_INDEX_URL=... tools/install.sh   # your CUDA build
#
# System tools (sox, espeak-ng, shellcheck) come from apt when missing and we are root; otherwise we
# say what to install and stop.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/tools/venv}
python=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
ESPNET_SPEC=${ESPNET_SPEC:-espnet==202511}

# ---- system tools --------------------------------------------------------------------------------
declare -A apt_pkg=([sox]="sox libsox-fmt-all" [espeak-ng]=espeak-ng [shellcheck]=shellcheck)
missing=()
for tool in sox espeak-ng shellcheck; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(for t in "${missing[@]}"; do echo "${apt_pkg[$t]}"; done | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing system packages: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  else
    log "ERROR: missing system tools: ${missing[*]}."
    log "Install them with your package manager, e.g. 'sudo apt-get install $pkgs'"
    log "(conda: 'conda install -c conda-forge sox shellcheck'; espeak-ng from your distribution)."
    exit 1
  fi
fi

# ---- optional: tcmalloc, which utils/path_common.sh preloads for the recipes when present ----------
if ! compgen -G "/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4" >/dev/null \
    && ! [ -e /usr/lib64/libtcmalloc_minimal.so.4 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing libtcmalloc-minimal4 (faster allocation for the recipes; optional)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libtcmalloc-minimal4 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
               apt-get install -y -qq --no-install-recommends libtcmalloc-minimal4; }; } >/dev/null 2>&1 \
      || log "WARNING: could not install libtcmalloc-minimal4; the recipes use glibc's malloc"
  else
    log "optional: 'sudo apt-get install libtcmalloc-minimal4' makes batched and long inputs 10-15 % faster"
  fi
fi

# ---- Python environment ------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
stamp=$venv/.install-stamp
want=$(cat "$root/tools/requirements.txt" "$root/tools/constraints.txt" "$root/setup.py" \
         <(echo "$TORCH_SPEC $ESPNET_SPEC") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c "import wavlm" 2>/dev/null; then
  log "tools/venv is up to date"
  exit 0
fi

pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
log "installing $TORCH_SPEC"
"${pip[@]}" "$TORCH_SPEC" -c "$root/tools/constraints.txt"
log "installing tools/requirements.txt pinned by tools/constraints.txt"
"${pip[@]}" -r "$root/tools/requirements.txt" -c "$root/tools/constraints.txt"
log "installing the wavlm package (editable)"
"${pip[@]}" --no-deps --no-build-isolation -e "$root"
log "installing $ESPNET_SPEC (--no-deps: its pins conflict with torch's setuptools)"
"${pip[@]}" --no-deps "$ESPNET_SPEC"

"$venv/bin/python" -c "import wavlm, kaldiio, sentencepiece, sox, espnet2.asr.ctc" 2>/dev/null \
  || { log "ERROR: the installed environment does not import; see the messages above"; exit 1; }
echo "$want" > "$stamp"
log "done: $venv"
