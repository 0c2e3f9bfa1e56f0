#!/usr/bin/env bash
# `make demo`: synthesise small corpora in the real on-disk layouts (under $DEMO_DIR, default demo/),
# push them through the real recipes with their debug configs, and print a results table, which also goes
# to $DEMO_RESULTS (default DEMO_RESULTS.txt, tracked: the README quotes it) headed by the commit, the
# machine and its load. The same seed on the same machine gives the same numbers (tests/test_determinism.py);
# another CPU type or thread count rounds differently, and training amplifies that.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=$(mkdir -p "${DEMO_DIR:-$root/demo}" && cd "${DEMO_DIR:-$root/demo}" && pwd)
seed=${DEMO_SEED:-0}
results=${DEMO_RESULTS:-$root/DEMO_RESULTS.txt}
MAIN_ROOT=$root
# shellcheck source=utils/path_common.sh
. "$root/utils/path_common.sh"
revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo "unknown (not a git checkout)")
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# The recipes to run ($RECIPES, e.g. `make demo RECIPES=voxceleb/superb1`; all by default), each with the ones
# whose models it uses (finished stages of those are skipped, so adding a recipe later costs only its own time).
all_recipes=(librispeech/ssl1 librispeech/asr1 voxceleb/sv1 libricss/css1 librispeech/superb1 voxceleb/superb1
             librimix/diar1)
declare -A needs=([librispeech/asr1]=librispeech/ssl1 [voxceleb/sv1]=librispeech/ssl1 [librispeech/superb1]=librispeech/ssl1
                  [voxceleb/superb1]=librispeech/ssl1 [librimix/diar1]=librispeech/ssl1
                  [libricss/css1]="librispeech/ssl1 librispeech/asr1")
wanted=" "
for r in ${RECIPES:-${all_recipes[*]}}; do
  [[ " ${all_recipes[*]} " == *" $r "* ]] || { log "ERROR: RECIPES: no demo recipe '$r' (choose from: ${all_recipes[*]})"
                                              exit 1; }
  wanted+="$r ${needs[$r]:-} "
done
recipes=()
for r in "${all_recipes[@]}"; do [[ "$wanted" != *" $r "* ]] || recipes+=("$r"); done
runs() { [[ " ${recipes[*]} " == *" $1 "* ]]; }
steps=$((${#recipes[@]} + 2)) step=0
progress() { step=$((step + 1)); log "[$step/$steps, $((SECONDS / 60)) min] $*"; }

train_speakers=${DEMO_TRAIN_SPEAKERS:-100}   # x 10 utterances of about 3.6 s: 1 h of training speech
corpora=(librispeech)
if runs voxceleb/sv1 || runs voxceleb/superb1; then corpora+=(voxceleb); fi
if runs voxceleb/sv1 || runs libricss/css1 || runs librimix/diar1; then corpora+=(musan rirs); fi
if runs libricss/css1; then corpora+=(libricss); fi
progress "synthesising ${corpora[*]} under $demo/corpora (seed $seed; LibriSpeech train-clean-100: $train_speakers" \
  "speakers) for ${recipes[*]}"
for corpus in "${corpora[@]}"; do
  case $corpus in
    librispeech) opts=(--num_speakers "$train_speakers");;
    # VoxCeleb2 dev: 40 speakers x 3 videos x 4 utterances (the default is tiny); O/E/H lists of 600 trials
    voxceleb) opts=(--num_vox2_speakers 40 --utts_per_video 4 --num_trials 600);;
    *) opts=();;
  esac
  python -m wavlm.bin.synth --corpus "$corpus" --out "$demo/corpora" --seed "$seed" "${opts[@]}"
done
ls_root=$demo/corpora/LibriSpeech
wavlm=../../librispeech/ssl1/exp/iter2/checkpoint_best.pt   # the demo's pre-trained WavLM, from a recipe dir

if runs librispeech/ssl1; then
  progress "egs/librispeech/ssl1: MFCC, k-means, iteration 1, layer dump, k-means, WavLM iteration 2, export"
  (cd "$root/egs/librispeech/ssl1" && ./run.sh --librispeech_root "$ls_root" \
     --train_set train_clean_100 --train_parts train_clean_100 --nj 2 --km1_clusters 50 --km2_clusters 50 \
     --km_percent 1.0 --km_layer 1 --iter1_config conf/debug/iter1.yaml --iter2_config conf/debug/iter2.yaml)
fi

if runs librispeech/asr1; then
  progress "egs/librispeech/asr1: CTC fine-tuning from the ssl1 checkpoint and from random initialisation"
  asr=(./run.sh --librispeech_root "$ls_root" --train_set train_clean_100 --valid_set dev_clean --test_sets test_clean
       --asr_config conf/debug/finetune.yaml --lm_config conf/debug/lm.yaml --beam_size 8 --nj 2
       --word_lm_config conf/debug/lm_word.yaml --tune_sets dev_clean --lexicon_beam 100 --nbest 20
       --kenlm_grid "kenlm_weight=0,0.5,1,2,4 word_score=-1,0,1" --word_lm_grid "word_lm_weight=0,0.5,1,2 word_lm_word_score=-1,0,1")
  (cd "$root/egs/librispeech/asr1" && "${asr[@]}" --stop_stage 3 &&
   "${asr[@]}" --stage 4 --tag demo_wavlm --pretrained "$wavlm" &&
   "${asr[@]}" --stage 4 --tag demo_scratch)
fi

if runs voxceleb/sv1; then
  progress "egs/voxceleb/sv1: WavLM (the ssl1 checkpoint) + ECAPA-TDNN, and the filterbank ECAPA-TDNN"
  sv=(./run.sh --vox1_root "$demo/corpora/voxceleb1" --vox2_root "$demo/corpora/voxceleb2"
      --musan_root "$demo/corpora/musan" --rirs_root "$demo/corpora/RIRS_NOISES" --trial_lists vox1_O --nj 2
      --cohort_speakers 40 --cohort_utts_per_spk 5 --top_n 20)
  (cd "$root/egs/voxceleb/sv1" && "${sv[@]}" --stop_stage 1 &&
   "${sv[@]}" --stage 2 --tag demo_wavlm --pretrained "$wavlm" --sv_configs "conf/debug/stage1.yaml conf/debug/stage2.yaml" &&
   "${sv[@]}" --stage 2 --tag demo_fbank --sv_configs conf/debug/fbank.yaml)
fi

if runs libricss/css1; then
  progress "egs/libricss/css1: simulated mixtures, spectral and WavLM separators, continuous separation, WER"
  (cd "$root/egs/libricss/css1" && ./run.sh --libricss_root "$demo/corpora/LibriCSS" --librispeech_root "$ls_root" \
     --pretrained "$wavlm" --asr_model ../../librispeech/asr1/exp/asr_demo_wavlm/checkpoint_best.pt \
     --css_configs "conf/debug/css_stft.yaml conf/debug/css_wavlm.yaml" --num_train 400 --num_dev 40 --nj 2)
fi

# SUPERB: the debug configs' heads, trained longer, on layer-normalised hidden states (s3prl's
# --upstream_feature_normalize: without it the unnormalised filterbanks do not train at lr 1e-2)
superb_args="upstream.normalize=true head.project_dim=256 trainer.log_interval=100"
if runs librispeech/superb1; then
  progress "egs/librispeech/superb1: SUPERB PR (phone CTC) on the frozen ssl1 WavLM and on filterbanks"
  pr=(./run.sh --librispeech_root "$ls_root" --tasks pr --pr_config conf/debug/pr.yaml
      --train_args "$superb_args trainer.max_updates=2000 trainer.valid_interval_updates=250
      trainer.save_interval_updates=250 data.valid_max_batches=100")
  (cd "$root/egs/librispeech/superb1" && "${pr[@]}" --upstream "$wavlm" --tag demo_wavlm --stop_stage 4 &&
   "${pr[@]}" --upstream fbank --tag demo_fbank --stage 3)
fi

if runs voxceleb/superb1; then
  progress "egs/voxceleb/superb1: SUPERB SID (iden_split) on the frozen ssl1 WavLM and on filterbanks"
  sid=(./run.sh --vox1_root "$demo/corpora/voxceleb1" --tasks sid --sid_config conf/debug/sid.yaml
       --train_args "$superb_args trainer.max_updates=1000 trainer.valid_interval_updates=100
       trainer.save_interval_updates=100")
  (cd "$root/egs/voxceleb/superb1" && "${sid[@]}" --upstream "$wavlm" --tag demo_wavlm --stop_stage 3 &&
   "${sid[@]}" --upstream fbank --tag demo_fbank --stage 2)
fi
if runs librimix/diar1; then
  progress "egs/librimix/diar1: Libri2Mix-style mixtures, SUPERB SD on the frozen ssl1 WavLM and on filterbanks, DER"
  sd=(./run.sh --librispeech_root "$ls_root" --musan_root "$demo/corpora/musan" --num_mixtures "300 40 40"
      --sd_config conf/debug/sd.yaml --train_args "$superb_args trainer.max_updates=2000
      trainer.valid_interval_updates=500 trainer.save_interval_updates=500 data.chunk_frames=200 head.rnn_dim=64
      trainer.optim.lr=2e-3")
  (cd "$root/egs/librimix/diar1" && "${sd[@]}" --upstream "$wavlm" --tag demo_wavlm --stop_stage 4 &&
   "${sd[@]}" --upstream fbank --tag demo_fbank --stage 2)
fi

# The results table, into $results through a temporary name: a header saying what it was measured at and on
# (numbers are reproducible for one seed on one machine), then the table.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
torch_info=$(python -c 'import torch; print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                                             f"{torch.backends.cpu.get_cpu_capability()}")')
field() { python -c "import json, sys; print(f'{json.load(open(sys.argv[1]))[sys.argv[2]]:.{sys.argv[3]}f}')" "$1" "$2" "${3:-1}"; }
trap 'rm -f "$results.tmp"' EXIT
{
echo "# make demo at commit $revision (seed $seed, $train_speakers training speakers), finished $(date -u '+%F %H:%M') UTC"
echo "# $((SECONDS / 60)) min on $(nproc) CPUs (${cpu:-unknown CPU}; $torch_info)"
echo "# load average $load_at_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "Demo results"
if runs librispeech/asr1; then
  printf '%-40s %8s %8s %8s\n' "data dir" "utts" "spks" "hours"
  for d in "$root"/egs/librispeech/asr1/data/{train_clean_100,dev_clean,test_clean}/; do
    printf '%-40s %8d %8d %8.3f\n' "${d#"$root"/egs/}" "$(wc -l < "$d/utt2spk")" "$(wc -l < "$d/spk2utt")" \
      "$(awk '{ s += $2 } END { print s / 3600 }' "$d/utt2dur")"
  done
fi
if runs librispeech/ssl1; then
  echo
  printf '%-34s %8s %12s %14s %18s\n' "pre-training (dev_clean)" "updates" "masked acc" "unmasked acc" \
    "majority class"
  ssl=$root/egs/librispeech/ssl1
  for it in iter1 iter2; do
    line=$(grep -h "valid at update" "$ssl/exp/$it/train.log" | tail -n 1)
    labels=$(grep -o 'data.valid_labels=[^ ]*' "$ssl/exp/$it/cmd.txt" | cut -d= -f2)
    # the share of the most frequent label: what always guessing it would score
    majority=$(cut -d' ' -f2- "$ssl/$labels" | tr ' ' '\n' | sort | uniq -c | sort -rn |
               awk 'NR == 1 { top = $1 } { n += $1 } END { printf "%.4f", top / n }')
    printf '%-34s %8s %12s %14s %18s\n' "librispeech/ssl1/exp/$it" "$(sed -E 's/.*update ([0-9]+).*/\1/' <<< "$line")" \
      "$(sed -E 's/.*acc_masked ([0-9.]+).*/\1/' <<< "$line")" "$(sed -E 's/.*acc_unmasked ([0-9.]+).*/\1/' <<< "$line")" \
      "$majority"
  done
fi
if runs librispeech/asr1; then
  echo
  printf '%-38s %-8s %10s %10s %12s %12s %14s\n' "ASR (test_clean, %)" "init" "greedy WER" "greedy CER" \
    "char-LM WER" "4-gram WER" "4-gram+TLM WER"
  asr_dir=$root/egs/librispeech/asr1/exp
  rate() { field "$1" wer; }
  for tag in demo_wavlm demo_scratch; do
    e=$asr_dir/asr_$tag
    beam=$(basename "$(ls -d "$e"/decode_beam*)")
    printf '%-38s %-8s %10s %10s %12s %12s %14s\n' "librispeech/asr1/exp/asr_$tag" "${tag#demo_}" \
      "$(rate "$e/decode_greedy/test_clean/wer/result.json")" "$(rate "$e/decode_greedy/test_clean/cer/result.json")" \
      "$(rate "$e/$beam/test_clean/wer/result.json")" "$(rate "$e/decode_4gram/test_clean/wer/result.json")" \
      "$(rate "$e/decode_4gram_tlm/test_clean/wer/result.json")"
  done
fi
if runs voxceleb/sv1; then
  echo
  printf '%-40s %-10s %10s %14s %14s\n' "speaker verification (Vox1-O)" "front end" "EER %" "EER % AS-norm" \
    "minDCF 0.01"
  for tag in demo_wavlm demo_fbank; do
    e=$root/egs/voxceleb/sv1/exp/sv_$tag
    printf '%-40s %-10s %10s %14s %14s\n' "voxceleb/sv1/exp/sv_$tag" "${tag#demo_}" \
      "$(field "$e/score_vox1_O/result.json" eer)" "$(field "$e/score_vox1_O_asnorm/result.json" eer)" \
      "$(field "$e/score_vox1_O/result.json" mindcf_0.01 3)"
  done
fi
if runs libricss/css1; then
  echo
  css=$root/egs/libricss/css1/exp
  printf '%-40s %14s\n' "separation (simulated dev)" "SI-SDRi dB"
  for sys in css_stft css_wavlm; do
    printf '%-40s %14s\n' "libricss/css1/exp/$sys" \
      "$(grep -h "valid at update" "$css/$sys/train.log" | tail -n 1 | sed -E 's/.*si_sdri (-?[0-9.e-]+).*/\1/')"
  done
  echo
  echo "LibriCSS utterance-wise WER (%), the asr_demo_wavlm model on each stream"
  sed -n '/^| system/,$p' "$css/RESULTS.md"
fi
if runs librispeech/superb1 || runs voxceleb/superb1 || runs librimix/diar1; then
  echo
  printf '%-24s %-10s %8s %8s %8s   %s\n' "SUPERB (frozen, %)" "upstream" "PR PER" "SID acc" "SD DER" \
    "PR layer weights (input, layer 1, ...)"
  value() { if [ -f "$1" ]; then field "$1" value 2; else echo "not run"; fi; }
  for tag in demo_wavlm demo_fbank; do
    pr_result=$root/egs/librispeech/superb1/exp/$tag/pr/test_clean/result.json
    weights=$([ ! -f "$pr_result" ] || python -c "import json, sys; print(' '.join(f'{w:.3f}' for w in
                                                   json.load(open(sys.argv[1]))['layer_weights']))" "$pr_result")
    printf '%-24s %-10s %8s %8s %8s   %s\n' "superb1, diar1: $tag" "${tag#demo_}" "$(value "$pr_result")" \
      "$(value "$root/egs/voxceleb/superb1/exp/$tag/sid/sid_test/result.json")" \
      "$(value "$root/egs/librimix/diar1/exp/$tag/sd/scoring/test/result.json")" "$weights"
  done
fi
if runs librimix/diar1; then
  echo
  echo "Libri2Mix-style test set, DER % (collar 0; threshold and median filter tuned on dev)"
  for tag in demo_wavlm demo_fbank; do
    r=$root/egs/librimix/diar1/exp/$tag/sd/scoring/test/result.json
    printf '%-30s DER %6s = missed %6s + false alarm %6s + confusion %6s   %s\n' "librimix/diar1/exp/$tag" \
      "$(field "$r" der 2)" "$(field "$r" missed 2)" "$(field "$r" false_alarm 2)" "$(field "$r" confusion 2)" \
      "$(cd "$root/egs/librimix/diar1" && ls exp/"$tag"/sd/scoring/test/activity_*.png)"
  done
fi
} > "$results.tmp"
mv "$results.tmp" "$results"
echo
cat "$results"
log "wrote $results: commit it, and paste it into the README's \"What \`make demo\` prints\""
