#!/usr/bin/env bash
# Kaldi data dirs for pre-training on Libri-light (wavlm/data/corpora/librilight.py): one per subset,
# recordings cut into utterances of at most max_seconds from the json voice activity; then
#   data/$train_set = the subsets + every Kaldi data dir in extra_data_dirs (minus the validation set),
#   data/$valid_set = a copy of valid_data when given (e.g. LibriSpeech dev_clean), else the last
#                     num_valid utterances of the combination, held out from training.
# The paper's 94k h (WavLM Base+ / Large) = Libri-light 60k h + GigaSpeech 10k h + VoxPopuli 24k h:
# prepare GigaSpeech and VoxPopuli as Kaldi data dirs elsewhere (16 kHz; wav.scp, utt2spk, and segments
# or utt2dur) and list them in extra_data_dirs. Utterance ids must not clash across corpora.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librilight_root=    # the directory holding small/, medium/, large/
subsets="small medium large"
max_seconds=30      # longest utterance cut from a recording (split at the longest pauses)
min_seconds=1       # shorter pieces of speech are dropped
extra_data_dirs=    # more Kaldi data dirs to train on, e.g. "../../gigaspeech/data/train_xl ../../voxpopuli/data/train"
train_set=train
valid_set=valid
valid_data=         # a Kaldi data dir to validate on; empty: hold out num_valid utterances
num_valid=1000
data=data
. utils/parse_options.sh

if [ -z "$librilight_root" ]; then
  log "ERROR: give --librilight_root DIR, the directory holding Libri-light's small/, medium/, large/" \
      "(github.com/facebookresearch/libri-light)"
  exit 1
fi
# shellcheck disable=SC2086  # $subsets is a list
python -m wavlm.bin.prepare_data librilight --root "$librilight_root" --data "$data" --subsets $subsets \
  --max_seconds "$max_seconds" --min_seconds "$min_seconds"
parts=()
for p in $subsets; do parts+=("$data/$p"); done
for d in $extra_data_dirs; do
  if [ ! -f "$d/wav.scp" ] || [ ! -f "$d/utt2spk" ]; then
    log "ERROR: extra data dir $d has no wav.scp or utt2spk (a Kaldi data dir prepared elsewhere)"; exit 1
  fi
  parts+=("$d")
done
deps=("${parts[@]}")
[ -z "$valid_data" ] || deps+=("$valid_data")
key="subsets=$subsets max_seconds=$max_seconds min_seconds=$min_seconds extra=$extra_data_dirs valid=$valid_data $num_valid"
done_file=$data/$train_set/.done
if [ -f "$done_file" ] && [ "$(cat "$done_file")" = "$key" ] &&
   [ -z "$(find "${deps[@]}" -maxdepth 1 -type f -newer "$done_file")" ]; then
  log "$data/$train_set and $data/$valid_set are up to date"
  exit 0
fi
if [ -z "$valid_data" ]; then  # the validation set is held out: it must leave something to train on
  n=$(cat "${parts[@]/%//utt2spk}" | wc -l)
  if ! [[ $num_valid =~ ^[0-9]+$ ]] || [ "$num_valid" -lt 1 ] || [ "$num_valid" -ge "$n" ]; then
    log "ERROR: --num_valid $num_valid: the validation set is held out of the $n utterances of" \
        "${parts[*]}, so it must be at least 1 and fewer than $n (the default 1000 suits the full corpus);" \
        "pass e.g. --num_valid $(( n >= 20 ? n / 10 : 1 )), or --valid_data DIR to validate on a data dir" \
        "prepared elsewhere (e.g. LibriSpeech dev_clean)"
    exit 1
  fi
fi
# Libri-light dirs have segments; a dir without them gets whole-recording segments so that all combine.
tmp=$data/.${train_set}_tmp
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
for i in "${!parts[@]}"; do
  d=${parts[$i]}
  if [ ! -f "$d/segments" ]; then
    utils/copy_data_dir.sh "$d" "$tmp/part$i"
    [ -f "$tmp/part$i/utt2dur" ] || python -m wavlm.bin.datadir utt2dur "$tmp/part$i"
    awk '{print $1, $1, 0, $2}' "$tmp/part$i/utt2dur" > "$tmp/part$i/segments"
    parts[i]=$tmp/part$i
  fi
done
utils/combine_data.sh "$tmp/all" "${parts[@]}"
if [ -n "$valid_data" ]; then
  utils/copy_data_dir.sh "$valid_data" "$data/$valid_set"
  utils/copy_data_dir.sh "$tmp/all" "$data/$train_set"
else
  utils/subset_data_dir.sh --last "$num_valid" "$tmp/all" "$data/$valid_set"
  cut -d' ' -f1 "$tmp/all/utt2spk" | grep -vxFf <(cut -d' ' -f1 "$data/$valid_set/utt2spk") > "$tmp/train.list"
  utils/subset_data_dir.sh --utt-list "$tmp/train.list" "$tmp/all" "$data/$train_set"
fi
echo "$key" > "$done_file"
log "$data/$train_set: $(wc -l < "$data/$train_set/utt2spk") utterances; $data/$valid_set: $(wc -l < "$data/$valid_set/utt2spk")"
