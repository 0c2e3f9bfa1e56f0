#!/usr/bin/env bash
# SUPERB speaker diarization (SD) on Libri2Mix with a frozen upstream, or scoring a released diarization model:
#   ./run.sh --librimix_root /data/LibriMix --upstream /models/WavLM-Base+.pt
#   ./run.sh --librimix_root /data/LibriMix --frame_classifier /models/wavlm-base-plus-sd   # HF, nothing trained
# Without a LibriMix, stage 1 simulates Libri2Mix-style mixtures from --librispeech_root and --musan_root.
# 1 data (Kaldi data dirs + reference rttm)  2 training (weighted layers -> LSTM -> 2 speakers, PIT BCE)
# 3 diarization of dev and test (posteriors)  4 DER: threshold and median filter tuned on dev, applied to test
# 5 the SUPERB table of every model run, beside the paper's SD numbers ($exp/RESULTS.md)
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
librimix_root=        # holds Libri2Mix/wav16k/max/{train-100,dev,test} and .../metadata (LibriMix's scripts)
librispeech_root=     # without a LibriMix: LibriSpeech/ to simulate from (train-clean-100, dev-clean, test-clean)
musan_root=           # ... and MUSAN's noise/ for the noise of mix_both
num_mixtures="13900 3000 3000"  # mixtures simulated for train-100, dev, test (Libri2Mix's counts)
sim_dir=dump/simulated  # where the simulated Libri2Mix goes
seed=0                # of the simulation
source_rttm=          # SUPERB's per-utterance RTTMs of the sources (its LibriMix fork's metadata/LibriSpeech/*.rttm);
                      # empty: speaker turns from the energy of the clean sources
upstream=             # frozen upstream: Microsoft's .pt, HF WavLM dir, our checkpoint, transformers SSL dir, fbank
frame_classifier=     # instead: a WavLMForAudioFrameClassification dir (microsoft/wavlm-base-plus-sd), not trained
sd_config=conf/sd.yaml  # s3prl's SD config (conf/debug/sd.yaml: tiny, for tests and the demo)
ngpu=1                # GPUs per training job (torchrun when > 1); 0: train and diarize on the CPU
checkpoint=best       # model diarized: best (by dev DER), avg (trainer.average_best), last
train_args=           # extra overrides of the config, e.g. "trainer.update_freq=2"
thresholds=0.3,0.4,0.5,0.6,0.7  # the grid tuned on dev (s3prl's score.sh)
medians=1,11
collar=0.0            # seconds around reference boundaries not scored (SUPERB: 0)
tag=                  # the model's name in exp/ and the table; empty: the file name of --upstream/--frame_classifier
exp=exp
nj=2
help_message="Usage: ./run.sh --librimix_root DIR | --librispeech_root DIR --musan_root DIR, --upstream PATH|fbank | --frame_classifier DIR"
. utils/parse_options.sh

model_src=${frame_classifier:-$upstream}
[ -n "$tag" ] || { tag=$(basename "${model_src%/}"); tag=${tag%.pt}; }
if [ -z "$tag" ] && [ "$stage" -le 4 ] && [ "$stop_stage" -ge 2 ]; then
  log "ERROR: stages 2-4 need --upstream (to train) or --frame_classifier (a released SD model)"; exit 1
fi
dir=$exp/$tag/sd
device=() gpu=1
[ "$ngpu" -gt 0 ] || { device=(--device cpu); gpu=0; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data/{train_100,dev,test} with reference rttm (${librimix_root:-simulated from $librispeech_root})"
  local/data.sh --librimix_root "$librimix_root" --librispeech_root "$librispeech_root" --musan_root "$musan_root" \
    --num_mixtures "$num_mixtures" --source_rttm "$source_rttm" --sim_dir "$sim_dir" --seed "$seed" --nj "$nj"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ -z "$frame_classifier" ]; then
  [ "$upstream" = fbank ] || [ -e "$upstream" ] || { log "ERROR: --upstream '$upstream': give a checkpoint, a" \
    "model directory or fbank"; exit 1; }
  log "stage 2: SD on $upstream ($sd_config) -> $dir"
  # shellcheck disable=SC2086  # $train_args is a list of overrides
  $cmd --gpu "$ngpu" "$dir"/log/train.log \
    utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_superb --config "$sd_config" --exp_dir "$dir" \
      "${device[@]}" upstream.path="$upstream" data.train=data/train_100 data.valid=data/dev $train_args
  grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
fi

model=${frame_classifier:-$dir/checkpoint_$checkpoint.pt}
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  [ -e "$model" ] || { log "ERROR: no $model (run stage 2; --checkpoint avg needs trainer.average_best=N)"; exit 1; }
  for s in dev test; do
    if [ "$dir/$s/info.json" -nt "$model" ] && grep -qF "\"$(cd "$(dirname "$model")" && pwd)/$(basename "$model")\"" \
         "$dir/$s/info.json"; then
      log "stage 3: $dir/$s holds the posteriors of $model: not diarized again"; continue
    fi
    log "stage 3: diarizing data/$s with $model -> $dir/$s"
    $cmd --gpu "$gpu" "$dir/$s"/log/diarize.log \
      python -m wavlm.bin.diarize --model "$model" --data data/"$s" --out "$dir/$s" "${device[@]}"
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  if [ "$dir/scoring/test/result.json" -nt "$dir/test/posteriors.scp" ] &&
     [ "$dir/scoring/test/result.json" -nt "$dir/dev/posteriors.scp" ]; then
    log "stage 4: $dir/scoring is newer than the posteriors: not scored again"
  else
    log "stage 4: DER, threshold x median filter tuned on dev ($thresholds x $medians), applied to test -> $dir/scoring"
    $cmd "$dir"/scoring/log/score.log \
      python -m wavlm.bin.score_diar --sets "$dir"/dev "$dir"/test --refs data/dev/rttm data/test/rttm \
        --out "$dir"/scoring --thresholds "$thresholds" --medians "$medians" --collar "$collar" --tag "$tag"
  fi
  grep -h "^Post-processing" "$dir"/scoring/RESULTS.md
  grep -h " sd test DER " "$dir"/scoring/log/score.log 2>/dev/null || true
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: SUPERB table of every model under $exp -> $exp/RESULTS.md"
  python -m wavlm.bin.superb_table "$exp" --out "$exp"/RESULTS.md >/dev/null
  cat "$exp"/RESULTS.md
fi

log "done (stages $stage..$stop_stage)"
