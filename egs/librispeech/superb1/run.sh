#!/usr/bin/env bash
# SUPERB on LibriSpeech with a frozen upstream (the WavLM paper's Table I): phoneme recognition (PR, PER) and
# speech recognition (ASR, WER without LM), s3prl's heads on a learned weighted sum of the upstream's hidden states.
#   ./run.sh --librispeech_root /data/LibriSpeech --upstream /models/WavLM-Base+.pt [--tasks "pr asr"] [--stage N]
# 1 data  2 units: phone transcripts (lexicon) and phone / character units  3 training per task  4 evaluation
# 5 the SUPERB table of every upstream under $exp, beside the paper's rows
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
librispeech_root=            # LibriSpeech/ with train-clean-100/, dev-clean/, test-clean/
upstream=                    # Microsoft's .pt, HF WavLM dir, our checkpoint, transformers HuBERT/wav2vec 2.0 dir, fbank
tasks="pr asr"               # SUPERB tasks to run (sid, asv: egs/voxceleb/superb1)
train_set=train_clean_100    # training data dir (a LibriSpeech subset, - -> _; or train_960)
valid_set=dev_clean          # the best checkpoint is chosen by its PER / WER
test_sets=test_clean         # evaluated with the chosen checkpoint (PER / WER in the table)
lexicon=                     # PR lexicon(s), read in order; empty: <root>/../librispeech_lm/librispeech-lexicon.txt
pr_config=conf/pr.yaml       # s3prl's PR config (conf/debug/pr.yaml: tiny, for tests and the demo)
asr_config=conf/asr.yaml     # s3prl's ASR config (conf/debug/asr.yaml: tiny)
ngpu=1                       # GPUs per training job (torchrun when > 1); 0: train and evaluate on the CPU
checkpoint=best              # model evaluated: best (by the validation metric), avg (trainer.average_best), last
train_args=                  # extra overrides of the task configs, e.g. "trainer.update_freq=2"
tag=                         # the upstream's name in exp/ and the table; empty: its file name without .pt
exp=exp                      # units in $exp/units_*, models and results in $exp/<tag>/<task>/
help_message="Usage: ./run.sh --librispeech_root DIR --upstream CKPT|DIR|fbank [--tasks \"pr asr\"] [options]"
. utils/parse_options.sh

[ -n "$lexicon" ] || lexicon=$librispeech_root/../librispeech_lm/librispeech-lexicon.txt
[ -n "$tag" ] || { tag=$(basename "${upstream%/}"); tag=${tag%.pt}; }
if [ -z "$tag" ] && [ "$stage" -le 4 ] && [ "$stop_stage" -ge 3 ]; then
  log "ERROR: stages 3 and 4 need --upstream (a checkpoint, a model directory or fbank)"; exit 1
fi
for task in $tasks; do
  case $task in
    pr|asr) ;;
    *) log "ERROR: --tasks: pr and/or asr, not '$task' (sid, asv: egs/voxceleb/superb1)"; exit 1;;
  esac
done
declare -A config=([pr]=$pr_config [asr]=$asr_config)
declare -A units=([pr]=$exp/units_phone [asr]=$exp/units_char)
declare -A data=([pr]=data/pr [asr]=data)  # PR reads the phone data dirs data/pr/<set>
device=() gpu=1
[ "$ngpu" -gt 0 ] || { device=(--device cpu); gpu=0; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: Kaldi data dirs $train_set $valid_set $test_sets from $librispeech_root"
  local/data.sh --librispeech_root "$librispeech_root" --train_set "$train_set" --valid_set "$valid_set" \
    --test_sets "$test_sets"
  for opt in train_set valid_set test_sets; do
    for s in ${!opt}; do
      [ -f data/"$s"/wav.scp ] || { log "ERROR: --$opt names data/$s, which stage 1 did not make"; exit 1; }
    done
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  if [[ " $tasks " == *" pr "* ]]; then
    lex=()
    for f in $lexicon; do
      [ -f "$f" ] || { log "ERROR: no lexicon '$f': give --lexicon FILE (librispeech-lexicon.txt, openslr.org" \
                            "resource 11)"; exit 1; }
      lex+=(--lexicon "$f")
    done
    for s in $train_set $valid_set $test_sets; do
      log "stage 2: phone transcripts data/$s -> data/pr/$s ($lexicon)"
      python -m wavlm.bin.text_to_phones "${lex[@]}" data/"$s" data/pr/"$s"
    done
    log "stage 2: phone units from data/pr/$train_set/text -> ${units[pr]}"
    python -m wavlm.bin.train_tokenizer --text data/pr/"$train_set"/text --out "${units[pr]}" --model_type word
  fi
  if [[ " $tasks " == *" asr "* ]]; then
    log "stage 2: character units from data/$train_set/text -> ${units[asr]}"
    python -m wavlm.bin.train_tokenizer --text data/"$train_set"/text --out "${units[asr]}" --model_type char
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  [ "$upstream" = fbank ] || [ -e "$upstream" ] || { log "ERROR: --upstream '$upstream': give a checkpoint, a" \
    "model directory or fbank"; exit 1; }
  for task in $tasks; do
    dir=$exp/$tag/$task d=${data[$task]}
    log "stage 3: $task on $upstream (${config[$task]}) -> $dir"
    # shellcheck disable=SC2086  # $train_args is a list of overrides
    $cmd --gpu "$ngpu" "$dir"/log/train.log \
      utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_superb --config "${config[$task]}" --exp_dir "$dir" \
        "${device[@]}" upstream.path="$upstream" data.train="$d/$train_set" data.valid="$d/$valid_set" \
        data.tokenizer="${units[$task]}" $train_args
    grep -h "valid at update" "$dir"/train.log | tail -n 1 || true
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for task in $tasks; do
    dir=$exp/$tag/$task
    ckpt=$dir/checkpoint_$checkpoint.pt
    [ -f "$ckpt" ] || { log "ERROR: no $ckpt (run stage 3; --checkpoint avg needs trainer.average_best=N" \
                            "in --train_args)"; exit 1; }
    for s in $test_sets; do
      if [ "$dir/$s/result.json" -nt "$ckpt" ] && grep -q "/checkpoint_$checkpoint.pt\"" "$dir/$s/result.json"; then
        log "stage 4: $dir/$s/result.json is of $ckpt and newer: not evaluated again"; continue
      fi
      log "stage 4: $task on ${data[$task]}/$s with $ckpt -> $dir/$s/result.json"
      $cmd --gpu "$gpu" "$dir/$s"/log/infer.log \
        python -m wavlm.bin.superb_infer --checkpoint "$ckpt" --data "${data[$task]}/$s" --out "$dir/$s" \
          --tag "$tag" "${device[@]}"
    done
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: SUPERB table of every result under $exp -> $exp/SUPERB.md"
  python -m wavlm.bin.superb_table "$exp" --out "$exp"/SUPERB.md
  for f in "$exp"/*/*/layer_weights.png; do
    [ ! -f "$f" ] || log "stage 5: layer weights of ${f%/layer_weights.png}: $f (values: ${f%.png}.txt)"
  done
fi

log "done (stages $stage..$stop_stage)"
