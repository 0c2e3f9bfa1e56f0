# shellcheck shell=bash
# The job launcher of every parallel step: `$cmd [--gpu N] [--mem M] JOB=1:$nj log command...`.
# local = utils/local.sh (this machine), slurm = utils/slurm.sh (sbatch; options in conf/slurm.conf).
# Pick with WAVLM_BACKEND=slurm, or edit this line as you would in Kaldi.
cmd="utils/${WAVLM_BACKEND:-local}.sh"
[ -x "$cmd" ] || { echo "cmd.sh: no launcher $cmd (WAVLM_BACKEND is local or slurm)" >&2; exit 1; }
export cmd
