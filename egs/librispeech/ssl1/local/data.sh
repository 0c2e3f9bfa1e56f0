#!/usr/bin/env bash
# Kaldi data dirs from the LibriSpeech layout (wavlm/data/corpora/librispeech.py), then the training
# set as the combination of its parts (train_960 = train_clean_100 + train_clean_360 + train_other_500).
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librispeech_root=   # the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ...
train_set=train_960
train_parts="train_clean_100 train_clean_360 train_other_500"
data=data
. utils/parse_options.sh

python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data"
parts=()
for p in $train_parts; do
  [ -f "$data/$p/wav.scp" ] || { log "ERROR: $data/$p is missing (is it under $librispeech_root?)"; exit 1; }
  parts+=("$data/$p")
done
if [ ${#parts[@]} -gt 1 ] || [ "${parts[0]}" != "$data/$train_set" ]; then
  if [ ! -f "$data/$train_set/.done" ] || [ "$(cat "$data/$train_set/.done")" != "$train_parts" ] ||
     [ -n "$(find "${parts[@]}" -name .done -newer "$data/$train_set/.done")" ]; then
    utils/combine_data.sh "$data/$train_set" "${parts[@]}"
    echo "$train_parts" > "$data/$train_set/.done"
  fi
fi
