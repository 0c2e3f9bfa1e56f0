#!/usr/bin/env bash
# Kaldi data dirs for the LibriCSS recipe:
#   data/libricss_<cond> (0S 0L OV10 OV20 OV30 OV40, or those in --conditions) from <libricss_root>/for_release:
#       one 7-channel recording per session, segments/text/utt2spk of its reference utterances
#       (wavlm/data/corpora/libricss.py);
#   data/train_clean_100, dev_clean from LibriSpeech: the utterances the training mixtures are simulated from.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

libricss_root=      # LibriCSS/ (holding for_release/)
librispeech_root=   # LibriSpeech/ (train-clean-100/, dev-clean/)
conditions="0S 0L OV10 OV20 OV30 OV40"   # the LibriCSS conditions to prepare
data=data
. utils/parse_options.sh

if [ -z "$libricss_root" ] || [ -z "$librispeech_root" ]; then
  log "ERROR: give --libricss_root DIR (LibriCSS/ holding for_release/, github.com/chenzhuo1011/libri_css) and" \
      "--librispeech_root DIR (LibriSpeech/ holding train-clean-100/ and dev-clean/, openslr.org resource 12)"
  exit 1
fi
rel=$libricss_root
[ -d "$rel/for_release" ] && rel=$rel/for_release
missing=() present=()
for c in $conditions; do [ -d "$rel/$c" ] || missing+=("$c"); done
for c in 0S 0L OV10 OV20 OV30 OV40; do [ -d "$rel/$c" ] && present+=("$c"); done
if [ ${#missing[@]} -gt 0 ] && [ ${#present[@]} -gt 0 ]; then
  log "ERROR: the LibriCSS conditions ${missing[*]} are not under $rel; found only ${present[*]}:" \
      "pass --conditions \"${present[*]}\" to use those"
  exit 1
fi
for s in train-clean-100 dev-clean; do
  if [ -d "$librispeech_root" ] && [ ! -d "$librispeech_root/$s" ]; then
    log "ERROR: no $librispeech_root/$s: the training and validation mixtures are simulated from LibriSpeech" \
        "train-clean-100 and dev-clean (openslr.org resource 12)"
    exit 1
  fi
done
# shellcheck disable=SC2086  # $conditions is a list
python -m wavlm.bin.prepare_data libricss --root "$libricss_root" --data "$data" --subsets $conditions
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data" \
  --subsets train-clean-100 dev-clean
