#!/usr/bin/env bash
# Kaldi data dirs for LibriSpeech ASR fine-tuning (the logic: wavlm/data/corpora/librispeech.py, shared
# with the other LibriSpeech recipes):
#   data/train_clean_100, data/dev_clean, ...  every LibriSpeech subset present (or those in --subsets),
#       from <librispeech_root>/<subset>/<spk>/<chapter>/*.flac + *.trans.txt;
#   data/train_960   train_clean_100 + train_clean_360 + train_other_500, when all three are prepared
#                    (--combine_960 false: not made);
#   data/train_10min, data/train_1h, data/train_10h   Libri-light's limited supervision sets (1h/0,
#       1h/*, 1h/* + 9h, as Libri-light and fairseq define them) from librispeech_finetuning/, when found.
# Every data dir is left as it is when its sources are unchanged.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librispeech_root=   # the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ...
subsets=            # e.g. "train-clean-100 dev-clean"; empty: every subset present
combine_960=true    # make data/train_960 when train_clean_100, train_clean_360 and train_other_500 exist
librispeech_finetuning_root=   # librispeech_finetuning/ (1h/, 9h/); empty: <librispeech_root>/../librispeech_finetuning if there
finetuning_sets="train_10min train_1h train_10h"   # which limited supervision sets; empty: none
data=data
. utils/parse_options.sh

if [ -z "$librispeech_root" ]; then
  log "ERROR: give --librispeech_root DIR, the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ..." \
      "(openslr.org resource 12)"
  exit 1
fi
combine_opt=()
[ "$combine_960" = true ] && combine_opt=(--combine_960)
# shellcheck disable=SC2086  # $subsets is a list
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data" \
  ${subsets:+--subsets $subsets} "${combine_opt[@]}"

ft_root=$librispeech_finetuning_root
if [ -z "$finetuning_sets" ]; then
  log "no Libri-light limited supervision sets asked for (--finetuning_sets is empty)"
  exit 0
fi
if [ -z "$ft_root" ]; then
  if [ ! -d "$librispeech_root/../librispeech_finetuning" ]; then
    log "skipping train_10min/train_1h/train_10h: no $librispeech_root/../librispeech_finetuning" \
        "(give --librispeech_finetuning_root DIR, the unpacked librispeech_finetuning.tgz of Libri-light)"
    exit 0
  fi
  ft_root=$librispeech_root/../librispeech_finetuning
fi
speakers_opt=()
[ -f "$librispeech_root/SPEAKERS.TXT" ] && speakers_opt=(--speakers "$librispeech_root/SPEAKERS.TXT")
# shellcheck disable=SC2086  # $finetuning_sets is a list
python -m wavlm.bin.prepare_data librispeech_finetuning --root "$ft_root" --data "$data" \
  --subsets $finetuning_sets "${speakers_opt[@]}"
