#!/usr/bin/env bash
# VoxCeleb speaker verification with WavLM (Chen et al. 2022, Table 5): weighted sum of all WavLM layers ->
# ECAPA-TDNN -> 256-dim embedding, AAM-softmax on VoxCeleb2 dev; cosine scoring (+ AS-norm), EER/minDCF on
# VoxCeleb1 O/E/H.
#   ./run.sh --vox1_root /data/voxceleb1 --vox2_root /data/voxceleb2 --musan_root /data/musan \
#            --rirs_root /data/RIRS_NOISES --pretrained /models/WavLM-Large.pt
# 1 data (VoxCeleb, trial lists, MUSAN, RIRs)  2 training, one config after another, each from the last
# 3 embeddings  4 scoring (cosine and AS-norm), RESULTS.md
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
vox1_root=                   # voxceleb1/ with wav/ and the trial lists
vox2_root=                   # voxceleb2/ with dev/aac/ (m4a) or wav/
musan_root=                  # musan/ (noise, music, speech); empty: no additive augmentation
rirs_root=                   # RIRS_NOISES/; empty: no reverberation
pretrained=                  # WavLM to start from (ours, Microsoft's .pt, HF dir); empty with wavlm: random init
sv_configs="conf/sv_stage1.yaml conf/sv_stage2.yaml"   # trained in turn, each from the one before
                             # (add conf/sv_lmft.yaml for large-margin fine-tuning; conf/ecapa_fbank.yaml alone:
                             # the filterbank baseline)
hf_xvector=                  # score with a Hugging Face WavLMForXVector dir instead of training (stage 2 skipped)
train_set=train
train_sets="vox2_dev"        # stage 1: data/train = their union, "vox2_dev" (the paper) or "vox2_dev vox1_dev"
trials_dir=                  # where veri_test2.txt, list_test_all2.txt, list_test_hard2.txt are; empty: vox1_root
trial_lists="vox1_O vox1_E vox1_H"   # each one asked for must be in the corpus (stage 1 stops otherwise)
# AS-norm cohort: the mean embedding of each of up to $cohort_speakers training speakers, over
# $cohort_utts_per_spk of its utterances (evenly spread over its videos). VoxCeleb2 dev has 5,994 speakers
# with about 180 utterances each: 6000 takes every speaker, and 10 utterances from several videos make a
# speaker mean that averages out the session (about 60k utterances to embed, 5% of the set, where embedding
# all 1.09M would cost as much as the test side 7 times over).
cohort_speakers=6000
cohort_utts_per_spk=10
top_n=300                    # AS-norm: the N best-scoring cohort speakers per side
nj=8
ngpu=1
checkpoint=best              # model the later stages use: best (by the validation metric), avg (trainer.average_best), last
train_args=                  # extra config overrides for every training config
tag=
exp=exp
help_message="Usage: ./run.sh --vox1_root DIR --vox2_root DIR [--pretrained CKPT] [options]"
. utils/parse_options.sh

if [ -z "$tag" ]; then
  tag=$(basename "${sv_configs##* }" .yaml)
  [ -z "$hf_xvector" ] || tag=$(basename "$hf_xvector")
fi
sv_exp=$exp/sv_$tag

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data dirs and trial lists"
  local/data.sh --vox1_root "$vox1_root" --vox2_root "$vox2_root" --trial_lists "$trial_lists" \
    --train_sets "$train_sets" --trials_dir "$trials_dir"
  [ -z "$musan_root" ] || python -m wavlm.bin.prepare_data musan --root "$musan_root" --data data
  [ -z "$rirs_root" ] || python -m wavlm.bin.prepare_data rirs --root "$rirs_root" --data data
fi

augment=()
for d in noise music speech; do
  [ -f data/musan_$d/wav.scp ] && augment+=("data.augment.${d}_data=data/musan_$d")
done
[ -f data/rirs/wav.scp ] && augment+=(data.augment.rir_data=data/rirs)

model=$hf_xvector
if [ -z "$hf_xvector" ]; then
  prev=''
  i=0
  for config in $sv_configs; do
    i=$((i + 1))
    dir=$sv_exp/$i.$(basename "$config" .yaml)
    if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
      log "stage 2: training $config ${prev:+from $prev }-> $dir"
      # shellcheck disable=SC2086  # $train_args is a list of overrides
      $cmd --gpu "$ngpu" "$dir"/log/train.log \
        utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_sv --config "$config" --exp_dir "$dir" \
          data.train=data/"$train_set" model.init="$pretrained" model.init_sv="$prev" "${augment[@]}" $train_args
      grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
    fi
    prev=$dir/checkpoint_"$checkpoint".pt
  done
  model=$prev
fi

sets=vox1_test
[[ "$trial_lists" == *vox1_[EH]* ]] && sets="vox1_test vox1_all"
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  utils/subset_data_dir.sh --speakers "$cohort_speakers" --per-spk "$cohort_utts_per_spk" \
    data/"$train_set" data/"${train_set}"_cohort
  for s in $sets "${train_set}"_cohort; do
    [ -f data/"$s"/wav.scp ] || continue
    log "stage 3: embeddings of data/$s with $model"
    $cmd JOB=1:"$nj" "$sv_exp"/emb/"$s"/log/emb.JOB.log \
      python -m wavlm.bin.sv_embed --model "$model" --data data/"$s" --out "$sv_exp"/emb/"$s" --nj "$nj" \
        --job JOB --num_threads 1
    python -m wavlm.bin.sv_embed --model "$model" --data data/"$s" --out "$sv_exp"/emb/"$s" --nj "$nj" --merge
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: scoring ${trial_lists} -> $sv_exp/RESULTS.md"
  scored=()
  for list in $trial_lists; do
    if [ ! -f data/trials/"$list" ]; then
      log "ERROR: --trial_lists names $list, but there is no data/trials/$list (stage 1 makes it from VoxCeleb1's" \
          "trial lists); run stage 1, or leave $list out of --trial_lists"
      exit 1
    fi
    emb=$sv_exp/emb/vox1_test/emb.scp
    [ "$list" = vox1_O ] || emb=$sv_exp/emb/vox1_all/emb.scp
    python -m wavlm.bin.score_sv --emb "$emb" --trials data/trials/"$list" --out "$sv_exp"/score_"$list"
    python -m wavlm.bin.score_sv --emb "$emb" --trials data/trials/"$list" --out "$sv_exp"/score_"$list"_asnorm \
      --cohort_emb "$sv_exp"/emb/"${train_set}"_cohort/emb.scp --utt2spk data/"$train_set"/utt2spk --top_n "$top_n"
    scored+=("$sv_exp"/score_"$list" "$sv_exp"/score_"$list"_asnorm)
  done
  python -m wavlm.bin.score_sv --summarize "${scored[@]}" --out "$sv_exp"/RESULTS.md
  cat "$sv_exp"/RESULTS.md
fi

log "done (stages $stage..$stop_stage)"
