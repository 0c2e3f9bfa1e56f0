#!/usr/bin/env bash
# Kaldi data dirs for Libri2Mix diarization (the logic: wavlm/data/corpora/librimix.py; the simulation:
# wavlm/data/librimix_sim.py): data/{train_100,dev,test}, each with wav.scp (mixture id -> mix_both wav), utt2spk and
# spk2utt (a recording is its own utterance and speaker group), reco2dur, utt2dur and rttm (the speaker turns of
# each source inside the mixture: from --source_rttm, the per-utterance RTTMs of SUPERB's LibriMix fork
# (metadata/LibriSpeech/*.rttm, Kaldi alignments), when given, else from the energy of the clean sources s1/, s2/).
# Without --librimix_root, Libri2Mix-style mixtures are first simulated by LibriMix's rules from --librispeech_root
# and --musan_root into $sim_dir. Every step is skipped when its outputs are complete and its sources unchanged.
set -euo pipefail
# shellcheck source=/dev/null  # run from the recipe directory, where path.sh is
. ./path.sh

librimix_root=        # holds Libri2Mix/wav16k/max/ (as LibriMix's scripts write it)
librispeech_root=     # without a LibriMix: LibriSpeech/ to simulate from
musan_root=           # ... with MUSAN's noise/
num_mixtures="13900 3000 3000"  # simulated mixtures for train-100, dev, test (Libri2Mix's counts)
sim_dir=dump/simulated # where simulated mixtures go (a Libri2Mix/ tree)
source_rttm=          # SUPERB's per-utterance RTTMs of the LibriSpeech sources (space-separated), if any
seed=0
nj=2
data=data
. utils/parse_options.sh

if [ -z "$librimix_root" ]; then
  if [ -z "$librispeech_root" ] || [ -z "$musan_root" ]; then
    log "ERROR: give --librimix_root DIR (Libri2Mix made by LibriMix's scripts), or --librispeech_root and" \
        "--musan_root to simulate Libri2Mix-style mixtures"
    exit 1
  fi
  read -r -a counts <<< "$num_mixtures"
  splits=(train-100 dev test)
  [ "${#counts[@]}" -eq 3 ] || { log "ERROR: --num_mixtures needs 3 counts (train-100 dev test): '$num_mixtures'"; exit 1; }
  for i in 0 1 2; do
    log "simulating Libri2Mix ${splits[$i]}: ${counts[$i]} mixtures from $librispeech_root + $musan_root -> $sim_dir"
    python -m wavlm.bin.simulate_librimix --librispeech "$librispeech_root" --musan "$musan_root" --out "$sim_dir" \
      --split "${splits[$i]}" --num_mixtures "${counts[$i]}" --seed "$seed" --nj "$nj"
  done
  librimix_root=$sim_dir
fi
opts=()
for f in $source_rttm; do opts+=(--source_rttm "$f"); done
python -m wavlm.bin.prepare_data librimix --root "$librimix_root" --data "$data" --subsets train-100 dev test "${opts[@]}"
