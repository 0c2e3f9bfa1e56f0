#!/usr/bin/env bash
# Kaldi data dirs for the LibriCSS recipe:
#   data/libricss_<cond> (0S 0L OV10 OV20 OV30 OV40) from <libricss_root>/for_release: one 7-channel
#       recording per session, segments/text/utt2spk of its reference utterances (wavlm/data/corpora/libricss.py);
#   data/train_clean_100, dev_clean from LibriSpeech: the utterances the training mixtures are simulated from.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

libricss_root=      # LibriCSS/ (holding for_release/)
librispeech_root=   # LibriSpeech/ (train-clean-100/, dev-clean/)
data=data
. utils/parse_options.sh

python -m wavlm.bin.prepare_data libricss --root "$libricss_root" --data "$data"
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data" \
  --subsets train-clean-100 dev-clean
