"""The trainer: exact resume after SIGKILL, atomic checkpoints, keep-last, NaN handling, schedules."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toy_task import train

from wavlm.train import checkpoint as ckpt
from wavlm.train.schedule import ScheduleConfig, lr_scale

HERE = Path(__file__).parent


def weights(exp: Path) -> dict[str, torch.Tensor]:
    return ckpt.load(exp / "checkpoint_last.pt")["model"]


def test_resume_after_sigkill_is_bitwise_equal(tmp_path, env):
    # uninterrupted: 30 updates over 3 epochs (10 batches each) with update_freq 2 crossing epochs
    train(str(tmp_path / "full"), 30, update_freq=2)
    full = weights(tmp_path / "full")
    # interrupted: killed with SIGKILL after checkpoint_15 exists, then resumed to 30
    exp = tmp_path / "killed"
    cmd = [sys.executable, str(HERE / "toy_task.py"), str(exp), "30", "update_freq=2", "num_workers=1"]
    p = subprocess.Popen(cmd, env={**env, "WAVLM_TOY_SLEEP": "0.05"}, cwd=HERE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (exp / "checkpoint_15.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    resumed_from = max(int(c.stem.split("_")[1]) for c in ckpt.numbered(exp))
    assert resumed_from < 30, "the run finished before it could be killed; the test proves nothing"
    subprocess.run(cmd, env=env, cwd=HERE, check=True, capture_output=True)
    resumed = weights(exp)
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    assert ckpt.load(exp / "checkpoint_last.pt")["progress"]["updates"] == 30


def test_keep_last_and_last_link(tmp_path):
    t = train(str(tmp_path), 20)
    assert [p.name for p in ckpt.numbered(tmp_path)] == ["checkpoint_15.pt", "checkpoint_20.pt"]
    assert (tmp_path / "checkpoint_last.pt").stat().st_ino == (tmp_path / "checkpoint_20.pt").stat().st_ino
    assert t.updates == 20
    assert (tmp_path / "tensorboard").is_dir() and any((tmp_path / "tensorboard").iterdir())
    # a second run finds the work done and changes nothing
    mtime = (tmp_path / "checkpoint_20.pt").stat().st_mtime_ns
    train(str(tmp_path), 20)
    assert (tmp_path / "checkpoint_20.pt").stat().st_mtime_ns == mtime


def test_truncated_checkpoint_falls_back_to_older(tmp_path, caplog):
    train(str(tmp_path), 10)
    last = tmp_path / "checkpoint_10.pt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(RuntimeError, match="checkpoint_10.pt: cannot load checkpoint"):
        ckpt.load(last)
    path, state = ckpt.latest(tmp_path)
    assert path.name == "checkpoint_5.pt" and state["progress"]["updates"] == 5


def test_nan_loss_stops_without_writing_a_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* utterances ex"):
        train(str(tmp_path), 30, nan_at=7)
    for p in ckpt.numbered(tmp_path):  # what was saved before the NaN still loads
        assert torch.isfinite(ckpt.load(p)["model"]["0.weight"]).all()


def test_validation_improves(tmp_path):
    t = train(str(tmp_path), 40)
    assert t.validate()["mse"] < 0.5 * ToyMSE.initial()


class ToyMSE:
    @staticmethod
    def initial() -> float:
        from toy_task import ToyTask

        task = ToyTask()
        model = task.build_model().eval()
        with torch.no_grad():
            b = task.load_batch(list(range(40)), 0)
            return float(((model(b.x) - b.y) ** 2).mean())


def test_schedules():
    lin = ScheduleConfig(kind="linear", warmup_updates=10)
    assert lr_scale(lin, 0, 100) == pytest.approx(0.1)
    assert lr_scale(lin, 9, 100) == pytest.approx(1.0)
    assert lr_scale(lin, 55, 100) == pytest.approx(0.5)
    tri = ScheduleConfig(kind="tri_stage", phase_ratio=[0.1, 0.4, 0.5], init_lr_scale=0.01, final_lr_scale=0.05)
    assert lr_scale(tri, 0, 100) == pytest.approx(0.01)
    assert lr_scale(tri, 30, 100) == 1.0
    assert lr_scale(tri, 50, 100) == pytest.approx(1.0)
    assert lr_scale(tri, 99, 100) == pytest.approx(0.05 ** (49 / 50))
    assert lr_scale(tri, 100, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_scale(ScheduleConfig(kind="cosine"), 0, 10)


def test_ddp_two_processes_equal_one_process_with_accumulation(tmp_path, env):
    """torchrun with 2 CPU ranks (gloo) = 1 process accumulating 2 batches per update."""
    toy = str(HERE / "toy_task.py")
    subprocess.run([sys.executable, toy, str(tmp_path / "one"), "10", "update_freq=2", "dropout=0.0"],
                   env=env, cwd=HERE, check=True, capture_output=True)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        toy, str(tmp_path / "ddp"), "10", "dropout=0.0"], env=env, cwd=HERE, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    one, ddp = weights(tmp_path / "one"), weights(tmp_path / "ddp")
    assert not torch.equal(one["0.weight"], train_init_weight())  # it trained
    for k in one:
        assert torch.allclose(one[k], ddp[k], atol=1e-6), k


def train_init_weight() -> torch.Tensor:
    from toy_task import ToyTask

    return ToyTask().build_model()[0].weight.detach()
