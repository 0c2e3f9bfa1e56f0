#!/usr/bin/env bash
# LibriCSS continuous speech separation (Chen et al. 2022, Table 6): simulated training mixtures, a mask-based
# Conformer separator on STFT features (baseline) or STFT + WavLM layers, sliding-window separation of the
# sessions, utterance-wise WER by overlap condition with an ASR model of egs/librispeech/asr1.
#   ./run.sh --libricss_root /data/LibriCSS --librispeech_root /data/LibriSpeech \
#            --pretrained /models/WavLM-Large.pt --asr_model ../../librispeech/asr1/exp/asr_*/checkpoint_best.pt
# 1 data  2 simulate training/dev mixtures  3 train separators  4 separate sessions  5 decode streams  6 WER
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
libricss_root=               # LibriCSS/ (for_release/)
librispeech_root=            # LibriSpeech/ (train-clean-100/ and dev-clean/, simulated into mixtures)
pretrained=                  # WavLM for the css_wavlm separator
asr_model=                   # an ASR checkpoint of egs/librispeech/asr1 (wavlm.bin.train_asr)
css_configs="conf/css_stft.yaml conf/css_wavlm.yaml"
sim_config=conf/simulation.yaml
num_train=40000              # simulated 4 s training segments (44 h)
num_dev=1000
conditions="0S 0L OV10 OV20 OV30 OV40"
mvdr=false                   # true: the 7-channel variant (mask-based MVDR on the array) for the separators
decode_opts="--beam_size 1"  # options of wavlm.bin.asr_decode (e.g. "--beam_size 20 --lm LM --lm_weight 0.5")
nj=8
ngpu=1
checkpoint=best              # model the later stages use: best (by the validation metric), avg (trainer.average_best), last
train_args=                  # extra overrides for every separator config
exp=exp
help_message="Usage: ./run.sh --libricss_root DIR --librispeech_root DIR --pretrained CKPT --asr_model CKPT"
. utils/parse_options.sh

suffix=
[ "$mvdr" = true ] && suffix=_mvdr
systems="nosep"   # and each separator, as exp/sep_<config>[_mvdr]
for c in $css_configs; do systems="$systems $(basename "$c" .yaml)$suffix"; done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: LibriCSS sessions and LibriSpeech utterances"
  local/data.sh --libricss_root "$libricss_root" --librispeech_root "$librispeech_root" --conditions "$conditions"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for pair in "css_train train_clean_100 $num_train 1" "css_dev dev_clean $num_dev 2"; do
    read -r out src n seed <<< "$pair"
    log "stage 2: simulating $n mixtures from data/$src -> data/$out"
    $cmd JOB=1:"$nj" data/"$out"/log/sim.JOB.log \
      python -m wavlm.bin.simulate_css --data data/"$src" --out data/"$out" --num_segments "$n" --seed "$seed" \
        --config "$sim_config" --nj "$nj" --job JOB
    python -m wavlm.bin.simulate_css --data data/"$src" --out data/"$out" --num_segments "$n" --seed "$seed" \
      --config "$sim_config" --nj "$nj" --merge
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for c in $css_configs; do
    dir=$exp/$(basename "$c" .yaml)
    log "stage 3: training the separator $c -> $dir"
    # shellcheck disable=SC2086  # $train_args is a list of overrides
    $cmd --gpu "$ngpu" "$dir"/log/train.log \
      utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_css --config "$c" --exp_dir "$dir" \
        data.train=data/css_train data.valid=data/css_dev model.init="$pretrained" $train_args
    grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for sys in $systems; do
    model=none opts=()
    [ "$sys" = nosep ] || model=$exp/${sys%_mvdr}/checkpoint_"$checkpoint".pt
    [ "$sys" = "${sys%_mvdr}" ] || opts=(--mvdr)
    for c in $conditions; do
      log "stage 4: $sys on data/libricss_$c"
      python -m wavlm.bin.css_separate --model "$model" --data data/libricss_"$c" --out "$exp"/sep_"$sys"/"$c" \
        "${opts[@]}"
    done
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  [ -f "$asr_model" ] || { log "ERROR: no ASR model '$asr_model' (give --asr_model, from egs/librispeech/asr1)"; exit 1; }
  for sys in $systems; do
    for c in $conditions; do
      for s in "$exp"/sep_"$sys"/"$c"/stream*; do
        log "stage 5: decoding $s"
        # shellcheck disable=SC2086  # $decode_opts is a list of options
        $cmd JOB=1:"$nj" "$s"/decode/log/decode.JOB.log \
          python -m wavlm.bin.asr_decode --model "$asr_model" --data "$s" --out "$s"/decode --nj "$nj" --job JOB \
            --num_threads 1 $decode_opts
        # shellcheck disable=SC2086
        python -m wavlm.bin.asr_decode --model "$asr_model" --data "$s" --out "$s"/decode --nj "$nj" --merge $decode_opts
      done
    done
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: utterance-wise WER by condition -> $exp/RESULTS.md"
  rows=()
  for sys in $systems; do
    for c in $conditions; do
      python -m wavlm.bin.css_score --ref data/libricss_"$c"/text --out "$exp"/sep_"$sys"/wer/"$c" \
        --hyp "$exp"/sep_"$sys"/"$c"/stream*/decode/text
    done
    rows+=("$sys=$exp/sep_$sys/wer")
  done
  python -m wavlm.bin.css_score --table "${rows[@]}" --out "$exp"/RESULTS.md
  cat "$exp"/RESULTS.md
fi

log "done (stages $stage..$stop_stage)"
