#!/usr/bin/env bash
# Start a training CLI on every GPU of this machine, or of every machine of a Slurm allocation:
#   utils/torchrun.sh --ngpu N -m wavlm.bin.pretrain --config ... --exp_dir ...
# ngpu <= 1: plain `python`. One machine: `torchrun --standalone`. Under Slurm with several nodes
# (utils/slurm.sh --nodes M runs this once per node through srun): torchrun with a c10d rendezvous on
# the allocation's first node.
set -euo pipefail
# shellcheck source=utils/path_common.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/path_common.sh"
ngpu=1
port=${WAVLM_MASTER_PORT:-29500}
if [ "${1:-}" = --ngpu ]; then ngpu=$2; shift 2; fi
nnodes=${SLURM_JOB_NUM_NODES:-1}
if [ "$ngpu" -le 1 ] && [ "$nnodes" -le 1 ]; then
  exec python "$@"
fi
if [ "$nnodes" -le 1 ]; then
  exec torchrun --standalone --nnodes 1 --nproc_per_node "$ngpu" "$@"
fi
master=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
exec torchrun --nnodes "$nnodes" --nproc_per_node "$ngpu" --rdzv_id "${SLURM_JOB_ID:-wavlm}" \
  --rdzv_backend c10d --rdzv_endpoint "$master:$port" "$@"
