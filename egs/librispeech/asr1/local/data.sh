#!/usr/bin/env bash
# Kaldi data dirs from the LibriSpeech layout (<root>/<subset>/<spk>/<chapter>/*.flac + *.trans.txt):
# data/train_clean_100, data/dev_clean, ... for every subset present (or those in --subsets).
# The LibriSpeech logic is shared with the other LibriSpeech recipes: wavlm/data/corpora/librispeech.py.
set -euo pipefail

librispeech_root=   # the LibriSpeech/ directory holding train-clean-100/, dev-clean/, ...
subsets=            # e.g. "train-clean-100 dev-clean"; empty: every subset present
data=data
. utils/parse_options.sh

# shellcheck disable=SC2086  # $subsets is a list
python -m wavlm.bin.prepare_data librispeech --root "$librispeech_root" --data "$data" \
  ${subsets:+--subsets $subsets}
