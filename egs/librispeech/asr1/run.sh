#!/usr/bin/env bash
# LibriSpeech ASR: CTC fine-tuning of WavLM (Chen et al. 2022, Tables 3 and 4), LM beam search, WER.
#   ./run.sh --librispeech_root /data/LibriSpeech --pretrained /models/WavLM-Base+.pt [--stage N] [--stop_stage M]
# 1 data  2 units (sentencepiece)  3 LMs (token LM, word Transformer LM) and the lexicon  4 fine-tuning
# 5 decoding: log posteriors once per set; greedy; beam search + token LM; lexicon beam + 4-gram and + word
#   Transformer LM rescoring, their weights tuned on the dev sets  6 WER
set -euo pipefail
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=100
librispeech_root=            # LibriSpeech/ with train-clean-100/, dev-clean/, ...; librispeech_finetuning/ beside it
subsets=                     # LibriSpeech subsets to prepare, e.g. "train-clean-100 dev-clean"; empty: all present
combine_960=true             # make data/train_960 when train-clean-100, -360 and train-other-500 are there
librispeech_finetuning_root= # Libri-light's librispeech_finetuning/ (1h/, 9h/); empty: beside librispeech_root
finetuning_sets="train_10min train_1h train_10h"   # which limited supervision sets to prepare; empty: none
lm_text=                     # LM training text; empty: <librispeech_root>/../librispeech_lm/librispeech-lm-norm.txt[.gz]
pretrained=                  # encoder init: ours (ssl1), Microsoft's .pt or a Hugging Face dir; empty: random init
train_set=train_clean_100    # or train_10min, train_1h, train_10h, train_960
valid_set=dev_other          # fairseq validates on dev_other
test_sets="dev_clean dev_other test_clean test_other"
asr_config=conf/finetune_base_100h.yaml
lm_config=conf/lm_transformer.yaml
unit_type=char               # char (fairseq's letters) or bpe
bpe_vocab=5000
use_lm=true                  # train the LM (stage 3) and decode with it (stage 5)
beam_size=20
lm_weight=0.5
length_bonus=1.0
kenlm=                       # word n-gram of the lexicon beam (ARPA[.gz] or KenLM binary); empty: 4-gram.arpa.gz of
                             # the LM resources beside librispeech_lm_norm (openslr 11) when there; "none": no such decoding
lexicon_beam=500             # fairseq examples/hubert/config/decode/infer_kenlm.yaml: decoding.beam
kenlm_grid="kenlm_weight=0,1,2,3,4 word_score=-2,-1,0,1"   # tuned on the dev sets (fairseq searches 0..5 and -5..5)
word_lm_config=conf/lm_word_transformer.yaml   # word Transformer LM rescoring the lexicon beam's N-best; empty: none
word_lm_grid="word_lm_weight=0,1,2,3 word_lm_word_score=-2,-1,0,1"
nbest=50                     # hypotheses of the lexicon beam rescored by the word LM
tune_sets="dev_clean dev_other"  # each test set uses the weights tuned on the dev set of its condition (clean/other)
nj=8                         # parallel decoding jobs
ngpu=1                       # GPUs per training job (torchrun when > 1); stage 5's encoder pass: one job per GPU
checkpoint=best              # model the later stages use: best (by the validation metric), avg (trainer.average_best), last
train_args=                  # extra overrides of the ASR config, e.g. "trainer.update_freq=8"
lm_args=                     # extra overrides of the LM config
word_lm_args=                # extra overrides of the word LM config
tag=                         # name of the experiment (default: from the config and the init)
exp=exp
help_message="Usage: ./run.sh --librispeech_root DIR [--pretrained CKPT] [options]"
. utils/parse_options.sh

units=$exp/units_$unit_type
[ "$unit_type" = bpe ] && units=$exp/units_bpe$bpe_vocab
if [ -z "$tag" ]; then  # config + init (its name and a hash of its full path: two inits never share an exp dir)
  init=scratch
  [ -z "$pretrained" ] || init=$(basename "${pretrained%.pt}")_$(realpath -m "$pretrained" | md5sum | cut -c1-6)
  tag=$(basename "${asr_config%.yaml}")_$init
fi
asr_exp=$exp/asr_$tag
lm_exp=$exp/$(basename "${lm_config%.yaml}")_$(basename "$units")
if [ -z "$lm_text" ]; then
  for f in "$librispeech_root"/../librispeech_lm/librispeech-lm-norm.txt{,.gz}; do [ -f "$f" ] && lm_text=$f && break; done
fi
if [ -z "$kenlm" ] && [ -f "$librispeech_root"/../librispeech_lm/4-gram.arpa.gz ]; then
  kenlm=$librispeech_root/../librispeech_lm/4-gram.arpa.gz
fi
[ "$kenlm" != none ] || kenlm=
word_lm_exp=$exp/$(basename "${word_lm_config%.yaml}")
lexicon=$exp/lexicon_$(basename "$units").txt

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: Kaldi data dirs from $librispeech_root"
  local/data.sh --librispeech_root "$librispeech_root" --subsets "$subsets" --combine_960 "$combine_960" \
    --librispeech_finetuning_root "$librispeech_finetuning_root" --finetuning_sets "$finetuning_sets"
  made=$(for d in data/*/; do if [ -f "$d/wav.scp" ]; then basename "$d"; fi; done | paste -sd ' ')
  for opt in train_set valid_set test_sets; do
    for s in ${!opt}; do
      [ -f data/"$s"/wav.scp ] || { log "ERROR: --$opt names data/$s, which stage 1 did not make from this" \
        "download; the data dirs there: $made: pass --$opt with those"; exit 1; }
    done
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: $unit_type units from data/$train_set/text -> $units"
  python -m wavlm.bin.train_tokenizer --text data/"$train_set"/text --out "$units" --model_type "$unit_type" \
    --vocab_size "$bpe_vocab"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  if [ "$use_lm" = true ] || [ -n "$word_lm_config" ]; then
    [ -f "$lm_text" ] || { log "ERROR: no LM text '$lm_text' (give --lm_text, or --use_lm false --word_lm_config '')"
                           exit 1; }
  fi
  if [ "$use_lm" = true ]; then
    log "stage 3: token LM on $lm_text ($lm_config) -> $lm_exp"
    # shellcheck disable=SC2086  # $lm_args is a list of overrides
    $cmd --gpu "$ngpu" "$lm_exp"/log/train.log \
      utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_lm --config "$lm_config" --exp_dir "$lm_exp" \
        data.tokenizer="$units" "data.train=[$lm_text]" "data.valid=[kaldi:data/$valid_set/text]" $lm_args
    grep -h "valid at update" "$lm_exp"/train.log | tail -n 1 || true
  fi
  if [ -n "$word_lm_config" ] && [ -n "$kenlm" ]; then
    log "stage 3: word Transformer LM on $lm_text ($word_lm_config) -> $word_lm_exp"
    # shellcheck disable=SC2086  # $word_lm_args is a list of overrides
    $cmd --gpu "$ngpu" "$word_lm_exp"/log/train.log \
      utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_lm --config "$word_lm_config" --exp_dir "$word_lm_exp" \
        "data.train=[$lm_text]" "data.valid=[kaldi:data/$valid_set/text]" $word_lm_args
    grep -h "valid at update" "$word_lm_exp"/train.log | tail -n 1 || true
  fi
  if [ -n "$kenlm" ] && [ ! "$lexicon" -nt "$kenlm" ]; then
    log "stage 3: lexicon of $kenlm's words spelled in $units -> $lexicon"
    python -m wavlm.bin.make_lexicon --words "$kenlm" --units "$units" --out "$lexicon"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: CTC fine-tuning ($asr_config) from ${pretrained:-random initialisation} -> $asr_exp"
  # shellcheck disable=SC2086  # $train_args is a list of overrides
  $cmd --gpu "$ngpu" "$asr_exp"/log/train.log \
    utils/torchrun.sh --ngpu "$ngpu" -m wavlm.bin.train_asr --config "$asr_config" --exp_dir "$asr_exp" \
      data.train=data/"$train_set" data.valid=data/"$valid_set" data.tokenizer="$units" \
      model.init="$pretrained" $train_args
  grep -h "valid at update" "$asr_exp"/train.log | tail -n 1 || true
fi

decodes="greedy"
[ "$use_lm" = true ] && decodes="$decodes beam${beam_size}_lm${lm_weight}"
[ -n "$kenlm" ] && decodes="$decodes 4gram"
[ -n "$kenlm" ] && [ -n "$word_lm_config" ] && decodes="$decodes 4gram_tlm"
lp_sets=$test_sets  # and the dev sets the lexicon beam's weights are tuned on
[ -z "$kenlm" ] || lp_sets=$(echo "$test_sets $tune_sets" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | paste -sd ' ')
tune_set() {  # the dev set of a test set's condition: test_other -> dev_other; else the first tune set
  local t
  for t in $tune_sets; do [ "${1#*_}" = "${t#*_}" ] && { echo "$t"; return; }; done
  echo "${tune_sets%% *}"
}
decode() {  # decode SET DIR OPTIONS...: $nj CPU jobs on the stored log posteriors, then the merge
  local s=$1 out=$2; shift 2
  $cmd JOB=1:"$nj" "$out"/log/decode.JOB.log \
    python -m wavlm.bin.asr_decode --logprobs "$asr_exp"/logprobs/"$s" --out "$out" --nj "$nj" --job JOB \
      --num_threads 1 "$@"
  python -m wavlm.bin.asr_decode --logprobs "$asr_exp"/logprobs/"$s" --out "$out" --nj "$nj" --merge "$@"
}
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  # The encoder runs once per set, in length-sorted batches, and stores the CTC log posteriors in
  # $asr_exp/logprobs/<set>; every decoding reads them in $nj single-threaded CPU jobs. With --ngpu N > 0
  # that pass is N jobs of one GPU each (utils/local.sh gives job K GPU K-1; Slurm one GPU per job; on a
  # machine without GPUs it runs on the CPU); with --ngpu 0 it is $nj CPU jobs, one utterance at a time
  # (padded batches are slower on CPUs: bench/bench_decode.py).
  lp_nj=$nj lp_gpu=0 lp_opts=(--device cpu --num_threads 1 --batch_seconds 0)
  if [ "$ngpu" -gt 0 ]; then lp_nj=$ngpu lp_gpu=1 lp_opts=(); fi
  for s in $lp_sets; do
    lp=$asr_exp/logprobs/$s
    log "stage 5: CTC log posteriors of $s with $asr_exp/checkpoint_$checkpoint.pt -> $lp"
    $cmd --gpu "$lp_gpu" JOB=1:"$lp_nj" "$lp"/log/logprobs.JOB.log \
      python -m wavlm.bin.ctc_logprobs --model "$asr_exp"/checkpoint_"$checkpoint".pt --data data/"$s" --out "$lp" \
        --nj "$lp_nj" --job JOB "${lp_opts[@]}"
    python -m wavlm.bin.ctc_logprobs --model "$asr_exp"/checkpoint_"$checkpoint".pt --data data/"$s" --out "$lp" \
      --nj "$lp_nj" --merge
  done
  for s in $test_sets; do
    log "stage 5: decoding $s (greedy)"
    decode "$s" "$asr_exp"/decode_greedy/"$s" --beam_size 1
    if [ "$use_lm" = true ]; then
      log "stage 5: decoding $s (beam $beam_size + token LM, weight $lm_weight)"
      decode "$s" "$asr_exp"/decode_beam"${beam_size}"_lm"${lm_weight}"/"$s" --beam_size "$beam_size" \
        --lm "$lm_exp"/checkpoint_"$checkpoint".pt --lm_weight "$lm_weight" --length_bonus "$length_bonus"
    fi
  done
  if [ -n "$kenlm" ]; then
    lex=(--decoder lexicon --beam_size "$lexicon_beam" --lexicon "$lexicon" --kenlm "$kenlm")
    tlm=(--word_lm "$word_lm_exp"/checkpoint_"$checkpoint".pt --nbest "$nbest")
    for t in $tune_sets; do
      log "stage 5: tuning the 4-gram lexicon beam on $t ($kenlm_grid) -> $asr_exp/tune_4gram/$t"
      python -m wavlm.bin.asr_tune --logprobs "$asr_exp"/logprobs/"$t" --ref data/"$t"/text \
        --out "$asr_exp"/tune_4gram/"$t" "${lex[@]}" --grid "$kenlm_grid" --nj "$nj"
      if [ -n "$word_lm_config" ]; then
        read -ra best <<< "$(python -m wavlm.bin.asr_tune --out "$asr_exp"/tune_4gram/"$t" --print_best)"
        log "stage 5: tuning word Transformer LM rescoring on $t ($word_lm_grid) -> $asr_exp/tune_4gram_tlm/$t"
        python -m wavlm.bin.asr_tune --logprobs "$asr_exp"/logprobs/"$t" --ref data/"$t"/text \
          --out "$asr_exp"/tune_4gram_tlm/"$t" "${lex[@]}" "${best[@]}" "${tlm[@]}" --grid "$word_lm_grid" --nj "$nj"
      fi
    done
    for s in $test_sets; do
      t=$(tune_set "$s")
      read -ra best <<< "$(python -m wavlm.bin.asr_tune --out "$asr_exp"/tune_4gram/"$t" --print_best)"
      log "stage 5: decoding $s (lexicon beam $lexicon_beam + 4-gram, ${best[*]} tuned on $t)"
      decode "$s" "$asr_exp"/decode_4gram/"$s" "${lex[@]}" "${best[@]}"
      if [ -n "$word_lm_config" ]; then
        read -ra rescore <<< "$(python -m wavlm.bin.asr_tune --out "$asr_exp"/tune_4gram_tlm/"$t" --print_best)"
        log "stage 5: decoding $s (+ word Transformer LM rescoring, ${rescore[*]} tuned on $t)"
        decode "$s" "$asr_exp"/decode_4gram_tlm/"$s" "${lex[@]}" "${best[@]}" "${tlm[@]}" "${rescore[@]}"
      fi
    done
  fi
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: WER and CER -> $asr_exp/RESULTS.md"
  for s in $test_sets; do
    for d in $decodes; do
      for unit in word char; do
        python -m wavlm.bin.score_wer --ref data/"$s"/text --hyp "$asr_exp"/decode_"$d"/"$s"/text --unit $unit \
          --out "$asr_exp"/decode_"$d"/"$s"/"${unit:0:1}er" --json
      done
    done
  done
  python -m wavlm.bin.score_wer --summarize "$asr_exp"/decode_*/*/wer "$asr_exp"/decode_*/*/cer \
    --out "$asr_exp"/RESULTS.md
  cat "$asr_exp"/RESULTS.md
fi

log "done (stages $stage..$stop_stage)"
