"""The trainer: exact resume after SIGKILL, atomic checkpoints, keep-last, best and averaged checkpoints, NaN
handling, AMP (bf16 autocast, the fp16 grad scaler with a skipped step) on the CPU, schedules."""
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
    train(str(tmp_path / "full"), 30, update_freq=2, average_best=2)
    full = weights(tmp_path / "full")
    # interrupted: killed with SIGKILL after checkpoint_15 exists, then resumed to 30
    exp = tmp_path / "killed"
    cmd = [sys.executable, str(HERE / "toy_task.py"), str(exp), "30", "update_freq=2", "num_workers=1",
           "average_best=2"]
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
    # the best and the averaged models come out the same too
    for name in ("checkpoint_best.pt", "checkpoint_avg.pt"):
        a, b = ckpt.load(tmp_path / "full" / name), ckpt.load(exp / name)
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), (name, k)
    assert sorted(p.name for p in (exp / "nbest").iterdir()) == sorted(p.name for p in (tmp_path / "full" /
                                                                                       "nbest").iterdir())


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


def test_resume_purges_tensorboard_steps_logged_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(str(tmp_path), 20, log_interval=1)
    # as if the run had died after logging update 20 but before writing checkpoint_20
    for name in ("checkpoint_20.pt", "checkpoint_last.pt"):
        (tmp_path / name).unlink()
    train(str(tmp_path), 20, log_interval=1)  # resumes from checkpoint_15, logs 16..20 again
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps == list(range(1, 21)), steps


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


def test_best_checkpoint_is_the_best_validation_and_avg_is_the_mean(tmp_path):
    # validations at 10, 20, 30, 40 report mse 3, 1, 2, 5: best is update 20, the 2 best are 20 and 30
    t = train(str(tmp_path), 40, keep_last=10, average_best=2, valid_script=[3.0, 1.0, 2.0, 5.0])
    assert t.best == [{"updates": 20, "value": 1.0}, {"updates": 30, "value": 2.0}]
    best = ckpt.load(tmp_path / "checkpoint_best.pt")
    assert best["validation"]["updates"] == 20 and best["validation"]["mse"] == 1.0
    assert "optimizer" not in best  # a model, not a training state
    at = {u: ckpt.load(tmp_path / f"checkpoint_{u}.pt")["model"] for u in (20, 30, 40)}
    for k, v in best["model"].items():
        assert torch.equal(v, at[20][k]), k
    assert not torch.equal(at[20]["0.weight"], at[30]["0.weight"])  # else the mean proves nothing
    avg = ckpt.load(tmp_path / "checkpoint_avg.pt")
    assert avg["averaged"]["updates"] == [20, 30]
    for k, v in avg["model"].items():
        assert torch.allclose(v, (at[20][k] + at[30][k]) / 2, atol=1e-7), k
    assert sorted(p.name for p in (tmp_path / "nbest").iterdir()) == ["checkpoint_20.pt", "checkpoint_30.pt"]
    # the direction can be turned: the largest mse is then the best
    t = train(str(tmp_path / "max"), 40, best_metric_mode="max", valid_script=[3.0, 1.0, 2.0, 5.0])
    assert t.best == [{"updates": 40, "value": 5.0}]
    assert ckpt.load(tmp_path / "max" / "checkpoint_best.pt")["validation"]["updates"] == 40
    with pytest.raises(ValueError, match="best_metric_mode"):
        train(str(tmp_path / "other"), 10, best_metric="loss")
    with pytest.raises(ValueError, match="'wer' is not among the validation metrics"):
        train(str(tmp_path / "wer"), 10, best_metric="wer", best_metric_mode="min")


def test_finished_run_without_best_gets_one(tmp_path):
    """An exp dir trained before best checkpoints existed gets checkpoint_best.pt from one validation."""
    train(str(tmp_path), 10)
    (tmp_path / "checkpoint_best.pt").unlink()
    t = train(str(tmp_path), 10)
    assert t.updates == 10 and (tmp_path / "checkpoint_best.pt").is_file()


def test_bf16_autocast_trains_on_cpu(tmp_path):
    t = train(str(tmp_path), 40, amp="bf16")
    assert t.task.dtypes == {torch.bfloat16}
    t.cfg.amp = "none"
    assert t.validate()["mse"] < 0.5 * ToyMSE.initial()


def test_fp16_scaler_skips_an_overflowing_update_without_counting_it(tmp_path):
    """An update whose gradients overflow is skipped by the grad scaler; like fairseq, it is not counted:
    max_updates optimizer steps still happen and the schedule is not advanced by the skipped one."""
    t = train(str(tmp_path), 12, amp="fp16", overflow_at=7)
    assert t.task.dtypes == {torch.float16}
    seen = t.task.seen_updates
    assert len(seen) == 13 and sorted(set(seen)) == list(range(12))  # one update number was tried twice
    assert t.updates == 12 and t.scaler.get_scale() == 64.0  # fairseq's initial 128, halved once, never grown
    steps = {int(s["step"]) for s in t.optimizer.state_dict()["state"].values()}
    assert steps == {12}  # Adam took 12 steps, not 13
    for v in ckpt.load(tmp_path / "checkpoint_last.pt")["model"].values():
        assert torch.isfinite(v).all()
    # a loss scale that keeps falling is an error, not an endless loop
    with pytest.raises(FloatingPointError, match="min_loss_scale"):
        train(str(tmp_path / "low"), 12, amp="fp16", overflow_at=7, min_loss_scale=100.0)


def test_find_unused_parameters_only_when_needed():
    """DDP's graph search only for models that skip parameters: layerdrop, a CNN without gradients, a
    Transformer frozen for the first updates; never for a frozen encoder or an LM."""
    from conftest import SMALL_MODEL

    from wavlm.models.wavlm import WavLM, WavLMConfig
    from wavlm.tasks.common import skips_parameters
    from wavlm.tasks.lm import LmTask

    enc = WavLM(WavLMConfig(**SMALL_MODEL))
    assert not skips_parameters(enc) and not skips_parameters(None) and not LmTask.find_unused_parameters
    assert skips_parameters(WavLM(WavLMConfig(**SMALL_MODEL, encoder_layerdrop=0.1)))
    assert skips_parameters(WavLM(WavLMConfig(**SMALL_MODEL, feature_grad_mult=0.0)))
    assert not skips_parameters(WavLM(WavLMConfig(**SMALL_MODEL, encoder_layerdrop=0.1)), frozen=True)
    # without layerdrop, every trainable encoder parameter but mask_emb gets a gradient from a forward
    # without masking (which is why the SV and CSS tasks freeze mask_emb)
    enc.train()
    sum(h.sum() for h in enc.extract_features(torch.randn(2, 8000)).hidden_states).backward()
    assert [n for n, p in enc.named_parameters() if p.grad is None] == ["mask_emb"]


def test_validation_draws_the_same_randomness_every_time(tmp_path):
    """Validation re-seeds per batch: two validations of one model agree even when validation draws random
    numbers (masks in pre-training), so checkpoint_best compares models, not draws."""
    t = train(str(tmp_path), 5, valid_noise=1.0)
    first = t.validate()
    torch.rand(7)  # whatever training did to the global generator in between
    assert t.validate() == first
