#!/usr/bin/env bash
# WavLM pre-training on Libri-light (Chen et al. 2022, Sec. IV-A: Base+ and Large on 94k h =
# Libri-light 60k h + GigaSpeech 10k h + VoxPopuli 24k h; add the last two with --extra_data_dirs).
#   ./run.sh --librilight_root /data/librilight [--extra_data_dirs "DIR ..."] [--stage N] [--stop_stage M]
# 1 data (utterances of <= max_seconds from the json voice activity)  2 MFCC  3 k-means on MFCC  4 labels
# 5 iteration 1 (HuBERT-style masked prediction)  6 dump layer 6 of iteration 1  7 k-means on it  8 labels
# 9 iteration 2 (WavLM Base+: + denoising)  10 export
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
librilight_root=             # the directory holding small/, medium/, large/
subsets="small medium large"
max_seconds=30               # longest utterance cut from a recording
min_seconds=1                # shortest utterance kept
extra_data_dirs=             # Kaldi data dirs of other corpora to train on too (GigaSpeech, VoxPopuli, ...)
train_set=train
valid_set=valid
valid_data=                  # a Kaldi data dir to validate on (e.g. LibriSpeech dev_clean); empty: hold out
num_valid=1000               # ... this many utterances of the training data
nj=8                         # parallel jobs for feature and label dumping
ngpu=1                       # GPUs per training job (torchrun when > 1)
checkpoint=best              # model the later stages use: best (by the validation metric), avg (trainer.average_best), last
km1_clusters=100             # k-means on MFCC (HuBERT iteration 1)
km2_clusters=500             # k-means on iteration-1 hidden states
km_percent=0.1               # share of training utterances the k-means is fitted on
km_layer=6                   # iteration-1 layer whose output is clustered
iter1_config=conf/iter1_base.yaml
iter2_config=conf/base_plus.yaml
noise_data=                  # optional noise data dir for denoising with noise (mix.noise_prob)
train_args=                  # extra config overrides for both iterations, e.g. "trainer.update_freq=4"
exp=exp
help_message="Usage: ./run.sh --librilight_root DIR [options]"
. utils/parse_options.sh

sets="$train_set $valid_set"
iter1=$exp/iter1 iter2=$exp/iter2

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data dirs from $librilight_root ${extra_data_dirs:+and $extra_data_dirs}"
  local/data.sh --librilight_root "$librilight_root" --subsets "$subsets" --max_seconds "$max_seconds" \
    --min_seconds "$min_seconds" --extra_data_dirs "$extra_data_dirs" --train_set "$train_set" \
    --valid_set "$valid_set" --valid_data "$valid_data" --num_valid "$num_valid"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: MFCC (39 dims, 100 frames/s)"
  for s in $sets; do
    $cmd JOB=1:"$nj" dump/mfcc/"$s"/log/mfcc.JOB.log \
      python -m wavlm.bin.dump_mfcc --data data/"$s" --out dump/mfcc/"$s" --nj "$nj" --job JOB
    python -m wavlm.bin.dump_mfcc --data data/"$s" --out dump/mfcc/"$s" --nj "$nj" --merge
  done
fi

learn_km() {  # <feature dir prefix> <clusters> <k-means dir>
  python -m wavlm.bin.learn_kmeans --feats "$1/$train_set" --out "$3" --n_clusters "$2" --percent "$km_percent"
}
dump_labels() {  # <feature dir prefix> <k-means dir> <label dir prefix>
  for s in $sets; do
    $cmd JOB=1:"$nj" "$3/$s"/log/km.JOB.log \
      python -m wavlm.bin.dump_km_label --feats "$1/$s" --km "$2" --out "$3/$s" --nj "$nj" --job JOB
    python -m wavlm.bin.dump_km_label --feats "$1/$s" --km "$2" --out "$3/$s" --nj "$nj" --merge
  done
}
km1=km_mfcc$km1_clusters km2=km_iter1_l${km_layer}_$km2_clusters

# pre-training: <config> <exp dir> <label dir prefix> <clusters> [overrides...]
# shellcheck disable=SC2086  # $train_args is a list of overrides
pretrain() {
  local config=$1 dir=$2 labels=$3 k=$4
  shift 4
  rate=$(python -c "import json; print(json.load(open('$labels/$train_set/labels_info.json'))['label_rate'])")
  $cmd --gpu "$ngpu" "$dir"/log/train.log \
    utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.pretrain --config "$config" --exp_dir "$dir" \
      data.train=data/"$train_set" data.valid=data/"$valid_set" data.num_classes="$k" data.label_rate="$rate" \
      data.train_labels="$labels/$train_set"/km.txt data.valid_labels="$labels/$valid_set"/km.txt "$@" $train_args
  grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
}

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: k-means ($km1_clusters clusters) on MFCC"
  learn_km dump/mfcc "$km1_clusters" "$exp/$km1"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: MFCC k-means labels"
  dump_labels dump/mfcc "$exp/$km1" "dump/$km1"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: iteration 1, masked prediction of MFCC clusters ($iter1_config)"
  pretrain "$iter1_config" "$iter1" "dump/$km1" "$km1_clusters"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: iteration-1 layer $km_layer features"
  for s in $sets; do
    $cmd JOB=1:"$nj" dump/iter1_l"$km_layer"/"$s"/log/dump.JOB.log \
      python -m wavlm.bin.dump_features --model "$iter1"/checkpoint_"$checkpoint".pt --layer "$km_layer" \
        --data data/"$s" --out dump/iter1_l"$km_layer"/"$s" --nj "$nj" --job JOB
    python -m wavlm.bin.dump_features --model "$iter1"/checkpoint_"$checkpoint".pt --layer "$km_layer" \
      --data data/"$s" --out dump/iter1_l"$km_layer"/"$s" --nj "$nj" --merge
  done
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "stage 7: k-means ($km2_clusters clusters) on iteration-1 layer $km_layer"
  learn_km dump/iter1_l"$km_layer" "$km2_clusters" "$exp/$km2"
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log "stage 8: iteration-1 k-means labels"
  dump_labels dump/iter1_l"$km_layer" "$exp/$km2" "dump/$km2"
fi

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
  log "stage 9: iteration 2, WavLM Base+: masked prediction + denoising ($iter2_config)"
  pretrain "$iter2_config" "$iter2" "dump/$km2" "$km2_clusters" \
    ${noise_data:+mix.noise_data=$noise_data}
fi

if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 10 ]; then
  log "stage 10: export $iter2/checkpoint_$checkpoint.pt for Microsoft's and Hugging Face's code"
  if [ ! "$iter2"/hf/config.json -nt "$iter2"/checkpoint_"$checkpoint".pt ]; then
    python -m wavlm.bin.export --to official "$iter2"/checkpoint_"$checkpoint".pt "$iter2"/wavlm_official.pt
    python -m wavlm.bin.export --to hf "$iter2"/checkpoint_"$checkpoint".pt "$iter2"/hf
  fi
fi

log "done (stages $stage..$stop_stage)"
