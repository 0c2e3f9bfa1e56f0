#!/usr/bin/env bash
# Local job launcher (the interface of Kaldi's run.pl):
#   utils/local.sh [--max-jobs-run K] [--gpu N] [--mem M] [JOB=1:N] exp/log/x.JOB.log command args...
# Runs the jobs on this machine, at most K at a time (default: all), each writing its own log.
# Exits non-zero naming the failed jobs' logs if any fails. --gpu and --mem are accepted for
# compatibility with the Slurm back end; locally, --gpu N>0 with several jobs assigns
# CUDA_VISIBLE_DEVICES round-robin over the visible GPUs.
set -uo pipefail
# shellcheck source=utils/launcher_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
launcher_parse "$@"

qdir=$(dirname "$(launcher_log_for "$first")")/q
name=$(basename "$logfile" .log)
[ -z "$jobvar" ] || name=${name//$jobvar/}
script=$qdir/${name%.}.$$.sh
launcher_write_script "$script"

ngpu_visible=0
if [ "$gpu" -gt 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
  ngpu_visible=$(nvidia-smi -L 2>/dev/null | wc -l)
fi

running=0
for ((j = first; j <= last; j++)); do
  if [ "$running" -ge "$max_jobs_run" ]; then
    wait -n
    running=$((running - 1))
  fi
  if [ "$ngpu_visible" -gt 0 ] && [ "$last" -gt "$first" ]; then
    JOB=$j CUDA_VISIBLE_DEVICES=$(((j - first) % ngpu_visible)) bash "$script" &
  else
    JOB=$j bash "$script" &
  fi
  running=$((running + 1))
done
wait
rm -f "$script"
launcher_report
