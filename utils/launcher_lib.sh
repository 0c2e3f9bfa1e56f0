#!/usr/bin/env bash
# Shared by utils/local.sh and utils/slurm.sh (sourced, not run): parses the Kaldi job-launcher
# command line and writes one job script that both back ends run.
#
#   $cmd [--gpu N] [--mem M] [--num-threads T] [--max-jobs-run K] [--nodes N] \
#        [JOB=1:N] exp/log/name.JOB.log command args...
#
# `JOB` in the log name and in the arguments is replaced by the job index. Arguments are quoted
# for the shell except the operators | || && ; < > >> 2>&1, which may be passed escaped
# (`\|`) to build a pipeline, as with Kaldi's run.pl.

launcher_usage() {
  cat >&2 <<EOF
Usage: $0 [--gpu N] [--mem M] [--num-threads T] [--max-jobs-run K] [--nodes N] [JOB=1:N] log command...
e.g.:  $0 --max-jobs-run 4 JOB=1:8 exp/log/dump.JOB.log python -m wavlm.bin.x --job JOB
EOF
  exit 1
}

# shellcheck disable=SC2034  # the variables set here are read by the sourcing back end
launcher_parse() {
  gpu=0 mem="" num_threads=1 max_jobs_run="" nodes=1 config=""
  jobvar="" first=1 last=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --gpu) gpu=$2; shift 2 ;;
      --mem) mem=$2; shift 2 ;;
      --num-threads) num_threads=$2; shift 2 ;;
      --max-jobs-run) max_jobs_run=$2; shift 2 ;;
      --nodes) nodes=$2; shift 2 ;;
      --config) config=$2; shift 2 ;;
      --*) echo "$0: unknown option $1" >&2; launcher_usage ;;
      *) break ;;
    esac
  done
  if [[ ${1:-} =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    jobvar=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
    shift
    if [ "$first" -gt "$last" ]; then
      echo "$0: empty job range $jobvar=$first:$last" >&2
      exit 1
    fi
  fi
  [ $# -ge 2 ] || launcher_usage
  logfile=$1
  shift
  if [ -n "$jobvar" ] && [ "$last" -gt "$first" ] && [[ $logfile != *"$jobvar"* ]]; then
    echo "$0: log file $logfile must contain $jobvar so each job has its own log" >&2
    exit 1
  fi
  # the command as one shell string; JOB becomes ${JOB} in the written script
  command_str=""
  local arg
  for arg in "$@"; do
    case "$arg" in
      '|'|'||'|'&&'|';'|'<'|'>'|'>>'|'2>&1'|'2>') command_str+="$arg " ;;
      *)
        if [ -n "$jobvar" ]; then arg=${arg//$jobvar/@@JOBINDEX@@}; fi
        printf -v arg '%q' "$arg"
        command_str+="${arg//@@JOBINDEX@@/\$\{JOB\}} " ;;
    esac
  done
  command_str=${command_str% }
  max_jobs_run=${max_jobs_run:-$((last - first + 1))}
}

# launcher_log_for JOB: the log path of one job.
launcher_log_for() {
  if [ -n "$jobvar" ]; then echo "${logfile//$jobvar/$1}"; else echo "$logfile"; fi
}

# launcher_write_script FILE: a job script reading its index from $JOB (or from the Slurm array).
launcher_write_script() {
  local script=$1 log_template=$logfile
  if [ -n "$jobvar" ]; then log_template=${logfile//$jobvar/@@JOBINDEX@@}; fi
  printf -v log_template '%q' "$log_template"
  log_template=${log_template//@@JOBINDEX@@/\$\{JOB\}}
  mkdir -p "$(dirname "$script")"
  cat > "$script.tmp" <<EOF
#!/usr/bin/env bash
JOB=\${JOB:-\${SLURM_ARRAY_TASK_ID:-$first}}
log=$log_template
mkdir -p "\$(dirname "\$log")"
{
  echo "# $command_str"
  echo "# Started at \$(date) on \$(hostname)"
} > "\$log"
start=\$(date +%s)
cd $(printf '%q' "$PWD")
( ${launcher_prefix:-}$command_str ) >> "\$log" 2>&1
rc=\$?
echo "# Accounting: time=\$((\$(date +%s) - start)) threads=$num_threads" >> "\$log"
echo "# Ended (code \$rc) at \$(date)" >> "\$log"
exit \$rc
EOF
  chmod +x "$script.tmp"
  mv "$script.tmp" "$script"
}

# launcher_report: exit non-zero naming the failed logs (a job without an end line failed too).
launcher_report() {
  local j log failed=()
  for ((j = first; j <= last; j++)); do
    log=$(launcher_log_for "$j")
    grep -q '^# Ended (code 0)' "$log" 2>/dev/null || failed+=("$log")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} / $((last - first + 1)) jobs failed; see ${failed[*]}" >&2
    local l
    for l in "${failed[@]:0:3}"; do
      echo "---- tail of $l:" >&2
      tail -n 5 "$l" >&2 2>/dev/null || echo "(no log written)" >&2
    done
    exit 1
  fi
}
