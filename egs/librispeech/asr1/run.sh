#!/usr/bin/env bash
# LibriSpeech ASR: CTC fine-tuning of WavLM (Chen et al. 2022, Table 3/4).
#   ./run.sh --librispeech_root /data/LibriSpeech [--stage N] [--stop_stage M]
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
librispeech_root=      # LibriSpeech/ with train-clean-100/, dev-clean/, test-clean/, ...
help_message="Usage: ./run.sh --librispeech_root DIR [--stage N] [--stop_stage M]"
. utils/parse_options.sh

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: Kaldi data dirs from $librispeech_root"
  local/data.sh --librispeech_root "$librispeech_root"
fi

log "done (stages $stage..$stop_stage)"
