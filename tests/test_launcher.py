"""utils/local.sh and utils/slurm.sh: JOB substitution, failure reporting, the sbatch command."""
from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import run


def test_local_substitutes_job_and_logs_each(tmp_path, root, env):
    run([f"{root}/utils/local.sh", "--max-jobs-run", "2", "JOB=1:3", "log/x.JOB.log",
         "echo", "job JOB of data/split3/JOB", "|", "tr", "a-z", "A-Z"], env, cwd=tmp_path)
    for j in (1, 2, 3):
        log = (tmp_path / f"log/x.{j}.log").read_text()
        assert f"JOB {j} OF DATA/SPLIT3/{j}\n" in log
        assert log.splitlines()[0].startswith("# echo")
        assert "# Ended (code 0)" in log


def test_local_respects_max_jobs_run(tmp_path, root, env):
    # each job appends start/end marks; with K=1 they never interleave
    cmd = f"echo start >> {tmp_path}/order; sleep 0.2; echo end >> {tmp_path}/order"
    run([f"{root}/utils/local.sh", "--max-jobs-run", "1", "JOB=1:3", "log/s.JOB.log", "bash", "-c", cmd],
        env, cwd=tmp_path)
    assert (tmp_path / "order").read_text().split() == ["start", "end"] * 3


def test_local_failure_names_failed_logs(tmp_path, root, env):
    p = run([f"{root}/utils/local.sh", "JOB=1:4", "log/f.JOB.log", "bash", "-c",
             "echo output of JOB; [ JOB != 2 ] && [ JOB != 4 ]"], env, cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert "2 / 4 jobs failed" in p.stderr
    assert "log/f.2.log" in p.stderr and "log/f.4.log" in p.stderr and "log/f.1.log" not in p.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/f.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/f.3.log").read_text()


def test_local_single_job_without_range(tmp_path, root, env):
    run([f"{root}/utils/local.sh", "log/one.log", "echo", "a  b", "$HOME"], env, cwd=tmp_path)
    assert "a  b $HOME\n" in (tmp_path / "log/one.log").read_text()  # arguments are not re-split


def test_log_name_must_contain_job_var(tmp_path, root, env):
    p = run([f"{root}/utils/local.sh", "JOB=1:2", "log/x.log", "true"], env, cwd=tmp_path, check=False)
    assert p.returncode != 0 and "must contain JOB" in p.stderr


FAKE_SBATCH = """#!/usr/bin/env bash
# records its arguments, then runs the array like Slurm would (sbatch --wait)
echo "$@" > "$FAKE_SLURM_DIR/sbatch.args"
array=""
for a in "$@"; do case "$a" in --array=*) array=${a#--array=}; array=${array%%%*};; esac; done
script=${*: -1}
rc=0
for ((i=${array%-*}; i<=${array#*-}; i++)); do
  if [ "$i" = "${FAKE_SLURM_KILL:-}" ]; then continue; fi   # a job Slurm killed: no end line
  SLURM_ARRAY_TASK_ID=$i bash "$script" || rc=1
done
echo 12345
exit $rc
"""


def fake_slurm(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(FAKE_SBATCH)
    os.chmod(bindir / "sbatch", 0o755)
    e = dict(env)
    e["PATH"] = f"{bindir}:{env['PATH']}"
    e["FAKE_SLURM_DIR"] = str(tmp_path)
    return e


def test_slurm_builds_array_job(tmp_path, root, env):
    e = fake_slurm(tmp_path, env)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/slurm.conf").write_text("# site options\n--partition=gpu --time=1:00:00\n")
    run([f"{root}/utils/slurm.sh", "--gpu", "2", "--mem", "8G", "--num-threads", "4", "--max-jobs-run", "2",
         "JOB=1:3", "exp/log/t.JOB.log", "echo", "task", "JOB"], e, cwd=tmp_path)
    args = (tmp_path / "sbatch.args").read_text().split()
    assert "--wait" in args and "--array=1-3%2" in args
    assert "--gres=gpu:2" in args and "--mem=8G" in args and "--cpus-per-task=4" in args
    assert "--partition=gpu" in args and "--time=1:00:00" in args
    assert re.search(r"exp/log/q/t\.\d+\.sh$", args[-1])
    for j in (1, 2, 3):
        assert f"task {j}\n" in (tmp_path / f"exp/log/t.{j}.log").read_text()


def test_slurm_multi_node_runs_under_srun(tmp_path, root, env):
    e = fake_slurm(tmp_path, env)
    bindir = tmp_path / "fakebin"
    (bindir / "srun").write_text('#!/usr/bin/env bash\necho "srun $*" >> "$FAKE_SLURM_DIR/srun.args"\n'
                                 'while [[ $1 == --* ]]; do shift; done\nexec "$@"\n')
    os.chmod(bindir / "srun", 0o755)
    run([f"{root}/utils/slurm.sh", "--nodes", "2", "--gpu", "8", "exp/log/train.log", "echo", "trained"],
        e, cwd=tmp_path)
    assert "--nodes=2" in (tmp_path / "sbatch.args").read_text().split()
    assert "--nodes=2 --ntasks-per-node=1" in (tmp_path / "srun.args").read_text()
    assert "trained" in (tmp_path / "exp/log/train.log").read_text()


def test_slurm_killed_job_is_a_failure(tmp_path, root, env):
    e = fake_slurm(tmp_path, env)
    e["FAKE_SLURM_KILL"] = "2"
    p = run([f"{root}/utils/slurm.sh", "JOB=1:3", "exp/log/k.JOB.log", "true"], e, cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert "1 / 3 jobs failed" in p.stderr and "exp/log/k.2.log" in p.stderr
