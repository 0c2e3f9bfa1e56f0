#!/usr/bin/env bash
# Slurm job launcher with the same interface as utils/local.sh (and Kaldi's slurm.pl):
#   utils/slurm.sh [--gpu N] [--mem M] [--num-threads T] [--max-jobs-run K] [--nodes N] \
#                  [--config conf/slurm.conf] [JOB=1:N] exp/log/x.JOB.log command args...
# Submits one job array with `sbatch --wait` (JOB = the array index), waits for it, and exits
# non-zero naming the logs of failed jobs. Jobs killed by Slurm (time, memory) leave no end line
# in their log and count as failed. With --nodes N>1 the command runs under `srun` once per node
# (one task per node), which is how torchrun is started on several machines.
# --config names a file of extra sbatch options, one or more per line (e.g. `--partition=gpu`,
# `--time=72:00:00`); default conf/slurm.conf when it exists.
set -uo pipefail
# shellcheck source=utils/launcher_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
launcher_parse "$@"
command -v sbatch >/dev/null 2>&1 || { echo "$0: sbatch not found; is Slurm installed here?" >&2; exit 1; }

if [ "$nodes" -gt 1 ]; then
  launcher_prefix="srun --nodes=$nodes --ntasks-per-node=1 "
fi
qdir=$(dirname "$(launcher_log_for "$first")")/q
name=$(basename "$logfile" .log)
[ -z "$jobvar" ] || name=${name//$jobvar/}
name=${name%.}
script=$qdir/$name.$$.sh
launcher_write_script "$script"

opts=(--parsable --wait --job-name="$name" --output="$qdir/$name.%A_%a.out"
      --array="$first-$last%$max_jobs_run" --cpus-per-task="$num_threads" --nodes="$nodes")
[ "$gpu" -gt 0 ] && opts+=(--gres="gpu:$gpu")
[ -n "$mem" ] && opts+=(--mem="$mem")
[ -z "$config" ] && [ -f conf/slurm.conf ] && config=conf/slurm.conf
if [ -n "$config" ]; then
  [ -f "$config" ] || { echo "$0: --config $config: no such file" >&2; exit 1; }
  while read -r -a extra; do
    [ ${#extra[@]} -eq 0 ] || [[ ${extra[0]} == \#* ]] || opts+=("${extra[@]}")
  done < "$config"
fi

# remove stale end lines so a job that never starts is not taken for a success
for ((j = first; j <= last; j++)); do rm -f "$(launcher_log_for "$j")"; done
sbatch "${opts[@]}" "$script" > "$qdir/$name.$$.jobid" || echo "$0: sbatch exited with an error" >&2
launcher_report
