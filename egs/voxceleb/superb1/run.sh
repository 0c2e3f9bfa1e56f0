#!/usr/bin/env bash
# SUPERB speaker identification (SID) and automatic speaker verification (ASV) on VoxCeleb1 with a frozen upstream
# (WavLM paper, Table I): a learned softmax-weighted sum of all its hidden states feeds s3prl's SUPERB heads.
#   ./run.sh --vox1_root /data/voxceleb1 --upstream /models/WavLM-Base+.pt [--tasks "sid asv"]
# 1 data (iden_split sets, VoxCeleb1 dev/test, Vox1-O trials)  2 training, one per task  3 evaluation (SID accuracy
# on sid_test, ASV EER on Vox1-O)  4 the SUPERB table of every upstream under $exp
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
vox1_root=                   # voxceleb1/ with wav/, iden_split.txt and veri_test2.txt
iden_split=                  # VoxCeleb1's iden_split.txt; empty: $vox1_root/iden_split.txt
trials_dir=                  # where veri_test2.txt is; empty: $vox1_root
upstream=                    # Microsoft's .pt, a Hugging Face WavLM dir, a checkpoint of ours, a transformers
                             # HuBERT/wav2vec 2.0 dir, or fbank
tasks="sid asv"
sid_config=conf/sid.yaml
asv_config=conf/asv.yaml
ngpu=1
checkpoint=best              # model evaluated: best (by the validation metric), avg (trainer.average_best), last
train_args=                  # extra config overrides for every task
tag=                         # the upstream's name in exp/ and the table; empty: its basename without .pt
exp=exp
help_message="Usage: ./run.sh --vox1_root DIR --upstream PATH|fbank [--tasks \"sid asv\"] [options]"
. utils/parse_options.sh

tag=${tag:-$(basename "$upstream" .pt)}
if [ -z "$tag" ] && [ "$stage" -le 3 ] && [ "$stop_stage" -ge 2 ]; then
  log "ERROR: give --upstream (a WavLM checkpoint, a model dir or fbank), or --tag NAME of one trained before"
  exit 1
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data/sid_{train,dev,test}, data/vox1_{dev,test}, data/trials/vox1_O"
  local/data.sh --vox1_root "$vox1_root" --iden_split "$iden_split" --trials_dir "$trials_dir"
fi

for task in $tasks; do
  case $task in
    sid) config=$sid_config; data=(data.train=data/sid_train data.valid=data/sid_dev)
         eval_args=(--data data/sid_test); out=sid_test ;;
    asv) config=$asv_config; data=(data.train=data/vox1_dev)   # validation: held-out utterances per speaker
         eval_args=(--data data/vox1_test --trials data/trials/vox1_O); out=vox1_O ;;
    *) log "ERROR: --tasks has $task; this recipe runs sid and asv"; exit 1 ;;
  esac
  dir=$exp/$tag/$task
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    log "stage 2: training $task ($config) on $upstream -> $dir"
    # shellcheck disable=SC2086  # $train_args is a list of overrides
    $cmd --gpu "$ngpu" "$dir"/log/train.log \
      utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_superb --config "$config" --exp_dir "$dir" \
        upstream.path="$upstream" "${data[@]}" $train_args
    grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
  fi
  ckpt=$dir/checkpoint_$checkpoint.pt
  if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    [ -f "$ckpt" ] || { log "ERROR: no $ckpt (run stage 2; avg needs trainer.average_best=N)"; exit 1; }
    if [ "$dir/$out/result.json" -nt "$ckpt" ] && grep -q "/checkpoint_$checkpoint.pt\"" "$dir/$out/result.json"; then
      log "stage 3: $dir/$out/result.json is of $ckpt and newer: not evaluated again"
    else
      log "stage 3: evaluating $ckpt on ${eval_args[*]} -> $dir/$out"
      $cmd --gpu "$ngpu" "$dir"/log/eval_"$out".log \
        python -m wavlm.bin.superb_infer --checkpoint "$ckpt" "${eval_args[@]}" --out "$dir/$out" --tag "$tag"
    fi
    grep -hF "$tag $task " "$dir"/log/eval_"$out".log | tail -n 1 || true
  fi
done

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: SUPERB table of every result under $exp -> $exp/SUPERB.md"
  if [ ! -f "$exp"/SUPERB.md ] || [ -n "$(find "$exp" -name result.json -newer "$exp"/SUPERB.md)" ]; then
    python -m wavlm.bin.superb_table "$exp" --out "$exp"/SUPERB.md >/dev/null
  fi
  cat "$exp"/SUPERB.md
  log "learned layer weights (layer_weights.txt beside each: hidden state, weight):" \
      "$(find "$exp" -name layer_weights.png | sort | tr '\n' ' ')"
fi

log "done (stages $stage..$stop_stage)"
