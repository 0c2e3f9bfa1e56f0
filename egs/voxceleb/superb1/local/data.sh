#!/usr/bin/env bash
# Kaldi data dirs and the Vox1-O trial list for SUPERB SID and ASV (the logic: wavlm/data/corpora/voxceleb.py;
# utterances are <spk>-<video>-<nnnnn>, each dir with wav.scp, utt2spk, spk2utt, utt2dur):
#   data/sid_train, sid_dev, sid_test   sets 1, 2, 3 of VoxCeleb1's iden_split.txt (SID: train, dev, test; every
#                    file it lists must be on disk);
#   data/vox1_dev    VoxCeleb1 speakers outside the test set (ASV trains on them); data/vox1_test the test speakers;
#   data/vox1_all    all of VoxCeleb1 (made on the way; not used here);
#   data/trials/vox1_O   `<enroll-utt> <test-utt> target|nontarget` from veri_test2.txt in $trials_dir.
# No data/train (sv1's VoxCeleb2 training set): SUPERB ASV trains on VoxCeleb1 dev.
# Every data dir and trial list is left as it is when its sources are unchanged.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

vox1_root=       # VoxCeleb1: holds wav/id10001/..., vox1_meta.csv, iden_split.txt and veri_test2.txt
iden_split=      # VoxCeleb1's iden_split.txt; empty: $vox1_root/iden_split.txt
trials_dir=      # where veri_test2.txt is; empty: $vox1_root
data=data
. utils/parse_options.sh

if [ -z "$vox1_root" ]; then
  log "ERROR: give --vox1_root DIR (VoxCeleb1 with iden_split.txt and veri_test2.txt);" \
      "download them from https://www.robots.ox.ac.uk/~vgg/data/voxceleb/"
  exit 1
fi
opts=()
[ -z "$iden_split" ] || opts+=(--iden_split "$iden_split")
[ -z "$trials_dir" ] || opts+=(--trials_dir "$trials_dir")
python -m wavlm.bin.prepare_data voxceleb --data "$data" --vox1_root "$vox1_root" "${opts[@]}" --train_sets \
  --trial_lists vox1_O --sid_sets sid_train sid_dev sid_test
