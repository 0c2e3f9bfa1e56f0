#!/usr/bin/env bash
# Kaldi data dirs for the SUPERB LibriSpeech tasks (the logic: wavlm/data/corpora/librispeech.py, shared with
# the other LibriSpeech recipes): data/<set> for each of --train_set --valid_set --test_sets, from the LibriSpeech subset of the same name
# (train_clean_100 <- <librispeech_root>/train-clean-100/<spk>/<chapter>/*.flac + *.trans.txt, ...);
# train_960 is train-clean-100 + train-clean-360 + train-other-500 combined.
# Every data dir is left as it is when its sources are unchanged.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librispeech_root=   # the LibriSpeech/ directory holding train-clean-100/, dev-clean/, test-clean/, ...
train_set=train_clean_100   # the data dirs to make (train, dev, test sets), named after the subsets (- -> _)
valid_set=dev_clean
test_sets=test_clean
data=data
. utils/parse_options.sh

if [ -z "$librispeech_root" ]; then
  log "ERROR: give --librispeech_root DIR, the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ..." \
      "(openslr.org resource 12)"
  exit 1
fi
subsets=() combine_opt=()
for s in $train_set $valid_set $test_sets; do
  if [ "$s" = train_960 ]; then
    subsets+=(train-clean-100 train-clean-360 train-other-500) combine_opt=(--combine_960)
  else
    subsets+=("${s//_/-}")
  fi
done
# each subset once, in order
mapfile -t subsets < <(printf '%s\n' "${subsets[@]}" | awk '!seen[$0]++')
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data" \
  --subsets "${subsets[@]}" "${combine_opt[@]}"
