#!/usr/bin/env bash
# Kaldi data dirs and trial lists for VoxCeleb speaker verification (the logic:
# wavlm/data/corpora/voxceleb.py; utterances are <spk>-<video>-<nnnnn>):
#   data/vox1_dev    VoxCeleb1 speakers outside the test set (vox1_meta.csv's Set column, else all but
#                    id10270..id10309), from <vox1_root>/wav/<id1xxxx>/<video>/<nnnnn>.wav;
#   data/vox1_test   the VoxCeleb1 test speakers;        data/vox1_all   all of VoxCeleb1;
#   data/vox2_dev    VoxCeleb2 dev, from <vox2_root>/dev/aac/<id0xxxx>/<video>/<nnnnn>.m4a (read through
#                    `ffmpeg ... |` pipes in wav.scp: ffmpeg must be on PATH) or .wav under dev/wav/ or wav/;
#   data/train       the union of $train_sets (the paper: VoxCeleb2 dev);
#   data/trials/vox1_O, vox1_E, vox1_H   `<enroll-utt> <test-utt> target|nontarget`, from veri_test2.txt,
#                    list_test_all2.txt, list_test_hard2.txt in $trials_dir: those of $trial_lists, each of which
#                    must be there (empty: none).
# Every data dir and trial list is left as it is when its sources are unchanged.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

vox1_root=       # VoxCeleb1: holds wav/id10001/..., vox1_meta.csv and the trial lists
vox2_root=       # VoxCeleb2: holds dev/aac/id00012/... (or dev/wav/..., wav/...); empty: no vox2_dev
train_sets="vox2_dev"   # data/train = their union: "vox2_dev" or "vox2_dev vox1_dev"; empty: no data/train
trials_dir=      # where veri_test2.txt, list_test_all2.txt, list_test_hard2.txt are; empty: $vox1_root
trial_lists="vox1_O vox1_E vox1_H"   # the trial lists to make; one that cannot be made is an error
data=data
. utils/parse_options.sh

if [ -z "$vox1_root" ] && [ -z "$vox2_root" ]; then
  log "ERROR: give --vox1_root DIR (VoxCeleb1 and its trial lists) and --vox2_root DIR (VoxCeleb2 dev);" \
      "download them from https://www.robots.ox.ac.uk/~vgg/data/voxceleb/"
  exit 1
fi
opts=()
[ -z "$vox1_root" ] || opts+=(--vox1_root "$vox1_root")
[ -z "$vox2_root" ] || opts+=(--vox2_root "$vox2_root")
[ -z "$trials_dir" ] || opts+=(--trials_dir "$trials_dir")
# shellcheck disable=SC2086  # $train_sets and $trial_lists are lists
python -m wavlm.bin.prepare_data voxceleb --data "$data" "${opts[@]}" --train_sets $train_sets \
  --trial_lists $trial_lists
