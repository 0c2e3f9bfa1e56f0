#!/usr/bin/env bash
# Kaldi data dirs from the LibriSpeech layout (wavlm/data/corpora/librispeech.py), then the training
# set as the combination of its parts (train_960 = train_clean_100 + train_clean_360 + train_other_500).
# A partial download: pick the parts that are there, e.g. --train_set train_clean_100 --train_parts train_clean_100.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librispeech_root=   # the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ...
train_set=train_960
train_parts="train_clean_100 train_clean_360 train_other_500"
valid_set=dev_clean # must be prepared too
data=data
. utils/parse_options.sh

if [ -z "$librispeech_root" ]; then
  log "ERROR: give --librispeech_root DIR, the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ..." \
      "(openslr.org resource 12)"
  exit 1
fi
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data"
# the LibriSpeech subsets of this download, as data dir names
present=()
for s in train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other; do
  [ -d "$librispeech_root/$s" ] && present+=("${s//-/_}")
done
parts=() missing=()
for p in $train_parts; do
  if [ -f "$data/$p/wav.scp" ]; then parts+=("$data/$p"); else missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  have=()
  for p in "${present[@]}"; do [[ $p == train_* ]] && have+=("$p"); done
  hint="pass --train_set and --train_parts naming what is there"
  if [ ${#have[@]} -eq 1 ]; then
    hint="pass --train_set ${have[0]} --train_parts ${have[0]}"
  elif [ ${#have[@]} -gt 1 ]; then
    hint="pass --train_set train --train_parts \"${have[*]}\""
  fi
  log "ERROR: $train_set needs --train_parts \"$train_parts\"; ${missing[*]} not under $librispeech_root" \
      "(as ${missing[*]//_/-}); found only: ${present[*]:-nothing}: $hint"
  exit 1
fi
if [ ! -f "$data/$valid_set/wav.scp" ]; then
  log "ERROR: the validation set $valid_set (--valid_set) is not under $librispeech_root (as ${valid_set//_/-});" \
      "found only: ${present[*]}: pass --valid_set with one of them (not a training part)"
  exit 1
fi
if [ ${#parts[@]} -gt 1 ] || [ "${parts[0]}" != "$data/$train_set" ]; then
  if [ ! -f "$data/$train_set/.done" ] || [ "$(cat "$data/$train_set/.done")" != "$train_parts" ] ||
     [ -n "$(find "${parts[@]}" -name .done -newer "$data/$train_set/.done")" ]; then
    utils/combine_data.sh "$data/$train_set" "${parts[@]}"
    echo "$train_parts" > "$data/$train_set/.done"
  fi
fi
