"""SUPERB protocol: upstreams, the weighted layer sum, the heads, the task on the shared trainer (frozen upstream,
best checkpoint, resume), inference and results."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL

from wavlm.config import from_dict
from wavlm.data.batching import bucket_batches
from wavlm.data.datadir import compute_utt2dur
from wavlm.data.tokenizer import train_tokenizer
from wavlm.features.fbank import compute_fbank
from wavlm.models.checkpoint import save_checkpoint
from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.superb import CtcHead, UtteranceHead, XVectorSvHead
from wavlm.models.upstream import FbankUpstream, TransformersUpstream, WavLMUpstream, load_upstream
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.superb import SuperbConfig, SuperbTask, load_superb
from wavlm.train.trainer import Trainer

SR = 16000


def test_weighted_sum_starts_equal_and_is_the_softmax_mix() -> None:
    states = [torch.randn(2, 5, 3) for _ in range(4)]
    s = WeightedLayerSum(4)
    assert s.layer_weights() == pytest.approx([0.25] * 4)
    assert torch.allclose(s(states), sum(states) / 4, atol=1e-6)
    with torch.no_grad():
        s.weights.copy_(torch.tensor([0.0, 1.0, 2.0, -1.0]))
    e = np.exp([0.0, 1.0, 2.0, -1.0])
    w = e / e.sum()
    hand = sum(float(w[i]) * states[i] for i in range(4))
    assert torch.allclose(s(states), hand, atol=1e-6)
    # with normalize, each state is layer-normalised over its feature dimension (no affine) first
    n = WeightedLayerSum(4, normalize=True)
    ln = [(h - h.mean(-1, keepdim=True)) / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5) for h in states]
    assert torch.allclose(n(states), sum(ln) / 4, atol=1e-5)


def test_bucket_batches() -> None:
    lengths = {f"u{i}": 1000 * (i + 1) for i in range(10)}
    b = bucket_batches(lengths, 3, 0, 1)
    assert sorted(u for x in b for u in x) == sorted(lengths)
    assert all(len(x) <= 3 for x in b)
    for x in b:  # neighbours in length
        n = sorted(lengths[u] for u in x)
        assert n[-1] - n[0] <= 2000
    assert b == bucket_batches(lengths, 3, 0, 1) and b != bucket_batches(lengths, 3, 0, 2)
    halved = bucket_batches(lengths, 4, 0, 1, shuffle=False, half_above=6500)
    assert [len(x) for x in halved] == [4, 2, 2, 1, 1]  # 5..8 k and 9..10 k are over: split in two


def test_ctc_head_shapes_and_padding() -> None:
    torch.manual_seed(0)
    head = CtcHead(16, 7, project_dim=8, rnn_layers=2, rnn_dim=6).eval()
    x = torch.randn(3, 20, 16)
    lengths = torch.tensor([20, 12, 5])
    lp = head.log_probs(x, lengths)
    assert lp.shape == (3, 20, 7)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(3, 20), atol=1e-5)
    alone = head.log_probs(x[1:2, :12], lengths[1:2])
    assert torch.allclose(lp[1, :12], alone[0], atol=1e-5)  # the BiLSTMs never see the padding
    targets = torch.tensor([[1, 2, 3], [4, 4, -1], [5, -1, -1]])
    loss, _ = head.loss(x, lengths, targets, torch.tensor([3, 2, 1]))
    by_hand = sum(torch.nn.functional.ctc_loss(lp[i, : lengths[i], None], targets[i:i + 1, :n], lengths[i:i + 1],
                                               torch.tensor([n])) for i, n in enumerate([3, 2, 1]))
    assert float(loss.detach()) == pytest.approx(float(by_hand), rel=1e-5)  # per-utterance loss / target length, summed
    linear = CtcHead(16, 7, project_dim=8)  # PR: Linear -> Linear
    assert [type(m).__name__ for m in linear.children()] == ["Linear", "ModuleList", "Dropout", "Linear"]


def test_utterance_and_xvector_heads() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 40, 16)
    lengths = torch.tensor([40, 25])
    sid = UtteranceHead(16, 5, 8)
    logits = sid.logits(x, lengths)
    assert logits.shape == (2, 5)
    assert torch.allclose(logits[1], sid.logits(x[1:, :25], lengths[1:])[0], atol=1e-5)  # mean over valid frames
    asv = XVectorSvHead(16, 5, tdnn_dim=(8, 8, 8, 8, 12), embed_dim=6).eval()
    emb = asv.embed(x, lengths)
    assert emb.shape == (2, 6)
    assert torch.allclose(emb[1], asv.embed(x[1:, :25], lengths[1:])[0], atol=1e-5)
    with pytest.raises(ValueError, match="too short for the x-vector TDNN"):
        asv.embed(x[:, :15], torch.tensor([15, 15]))


def test_fbank_upstream_frames() -> None:
    up = FbankUpstream()
    wav = torch.randn(2, 8000) * 0.1
    out = up(wav, torch.tensor([8000, 4000]))
    assert len(out.hidden_states) == 1 and out.hidden_states[0].shape == (2, 48, 80)
    assert out.lengths.tolist() == [up.frames(8000), up.frames(4000)] == [48, 23]
    ref = compute_fbank(wav[1, :4000].numpy(), cmn=False)
    assert np.allclose(out.hidden_states[0][1, :23].numpy(), ref) and not out.hidden_states[0][1, 23:].any()


def test_transformers_upstream_is_the_model_with_all_states(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                    conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
                                    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
                                    do_stable_layer_norm=True, feat_extract_norm="layer")
    torch.manual_seed(0)
    transformers.HubertModel(cfg).save_pretrained(tmp_path / "hubert")
    up = load_upstream(str(tmp_path / "hubert"))
    assert isinstance(up, TransformersUpstream) and up.num_states == 3 and up.frame_shift == 20
    ref = transformers.HubertModel.from_pretrained(tmp_path / "hubert").eval()
    wav = torch.randn(1, 4000)
    out = up(wav)
    hf = ref(wav, output_hidden_states=True)
    assert len(out.hidden_states) == 3 and out.lengths.tolist() == [up.frames(4000)] == [hf.last_hidden_state.shape[1]]
    for a, b in zip(out.hidden_states[:-1], hf.hidden_states[:-1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(out.hidden_states[-1], hf.last_hidden_state, atol=1e-5)  # final LayerNorm on the last
    assert not any(p.requires_grad for p in up.parameters())


# ---- the task on the trainer ----------------------------------------------------------------------------------------
def _tone_dir(d, speakers: dict[str, float], n: int, seconds: float, seed: int, text: dict | None = None):
    """Speakers = tones of their own frequency in noise: trivially separable."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    wav, u2s, txt = [], [], []
    for spk, f in speakers.items():
        for i in range(n):
            utt = f"{spk}-{seed}-{i:03d}"
            t = np.arange(int(seconds * SR * rng.uniform(0.8, 1.2))) / SR
            x = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(len(t))
            sf.write(d / f"{utt}.wav", x.astype(np.float32), SR)
            wav.append(f"{utt} {d / utt}.wav")
            u2s.append(f"{utt} {spk}")
            if text is not None:
                txt.append(f"{utt} {text[spk]}")
    (d / "wav.scp").write_text("\n".join(sorted(wav)) + "\n")
    (d / "utt2spk").write_text("\n".join(sorted(u2s)) + "\n")
    if text is not None:
        (d / "text").write_text("\n".join(sorted(txt)) + "\n")
    spk2utt = {}
    for line in sorted(u2s):
        u, s = line.split()
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    compute_utt2dur(d)
    return d


SPEAKERS = {"a": 300.0, "b": 700.0, "c": 1500.0, "d": 3100.0}


def test_sid_on_a_separable_case_is_well_above_chance(tmp_path) -> None:
    train = _tone_dir(tmp_path / "train", SPEAKERS, 6, 1.0, 1)
    dev = _tone_dir(tmp_path / "dev", SPEAKERS, 3, 1.0, 2)
    cfg = from_dict(SuperbConfig, {
        "task": "sid", "upstream": {"path": "fbank"}, "head": {"project_dim": 16},
        "data": {"train": str(train), "valid": str(dev), "batch_size": 8, "crop_samples": 8000},
        "trainer": {"max_updates": 80, "valid_interval_updates": 20, "save_interval_updates": 20, "num_workers": 0,
                    "log_interval": 20, "optim": {"lr": 0.003, "weight_decay": 0.0}, "schedule": {"kind": "constant"}}})
    task = SuperbTask(cfg)
    trainer = Trainer(cfg.trainer, task, task.build_model(), tmp_path / "exp")
    before = trainer.validate()["acc"]
    trainer.train()
    sb = load_superb(str(tmp_path / "exp" / "checkpoint_best.pt"))
    assert sb.task == "sid" and sb.labels == sorted(SPEAKERS)
    best = torch.load(tmp_path / "exp" / "checkpoint_best.pt", weights_only=True)["validation"]["acc"]
    assert best >= 90.0 > before + 40  # chance is 25 %
    from wavlm.bin.superb_infer import main as infer

    assert infer(["--checkpoint", str(tmp_path / "exp" / "checkpoint_best.pt"), "--data", str(dev),
                  "--out", str(tmp_path / "eval"), "--tag", "fbank"]) == 0
    result = json.loads((tmp_path / "eval" / "result.json").read_text())
    hyp = dict(line.split() for line in (tmp_path / "eval" / "hyp").read_text().splitlines())
    ref = dict(line.split() for line in (dev / "utt2spk").read_text().splitlines())
    assert result["metric"] == "acc" and result["value"] == pytest.approx(
        100 * np.mean([hyp[u] == ref[u] for u in ref])) and result["value"] >= 90


PHONES = {"a": "P AA1 T", "b": "B IY1", "c": "K AE1 T S", "d": "D AO1 G"}


@pytest.fixture
def wavlm_pr_setup(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "up.pt", WavLM(WavLMConfig(**SMALL_MODEL)))
    train = _tone_dir(tmp_path / "train", SPEAKERS, 3, 0.6, 1, PHONES)
    dev = _tone_dir(tmp_path / "dev", SPEAKERS, 1, 0.6, 2, PHONES)
    train_tokenizer(list(PHONES.values()), tmp_path / "units", "word", 100)
    return tmp_path, train, dev


def _pr_cfg(tmp_path, train, dev, max_updates: int, **upstream):
    return from_dict(SuperbConfig, {
        "task": "pr", "upstream": {"path": str(tmp_path / "up.pt"), **upstream}, "head": {"project_dim": 16},
        "data": {"train": str(train), "valid": str(dev), "tokenizer": str(tmp_path / "units"), "batch_size": 4},
        "trainer": {"max_updates": max_updates, "valid_interval_updates": 2, "save_interval_updates": 2,
                    "num_workers": 0, "log_interval": 1, "optim": {"lr": 0.01}}})


def test_frozen_upstream_gets_no_gradient_and_stays_bitwise(wavlm_pr_setup) -> None:
    tmp_path, train, dev = wavlm_pr_setup
    cfg = _pr_cfg(tmp_path, train, dev, 3)
    task = SuperbTask(cfg)
    model = task.build_model()
    assert isinstance(model.upstream, WavLMUpstream) and model.upstream.num_states == SMALL_MODEL["encoder_layers"] + 1
    up_before = {k: v.clone() for k, v in model.upstream.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    batch = task.load_batch(task.train_batches(1)[0], 0)
    model.train()
    assert not model.upstream.training  # frozen: eval mode (no dropout) even while the head trains
    loss, _, _ = task.loss(model, batch)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.upstream.parameters())
    assert model.featurizer.weights.grad is not None and model.featurizer.weights.grad.abs().sum() > 0
    Trainer(cfg.trainer, task, model, tmp_path / "exp").train()
    for k, v in model.upstream.state_dict().items():
        assert torch.equal(v, up_before[k]), k
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())
    state = torch.load(tmp_path / "exp" / "checkpoint_best.pt", weights_only=True)
    assert not any(k.startswith("upstream.") for k in state["weights"])  # the frozen upstream is not copied
    assert (tmp_path / "exp" / "checkpoint_best.pt").is_file()
    assert state["validation"]["metric"] == "per" and "per" in state["validation"]


def test_trainable_upstream_changes_and_is_stored(wavlm_pr_setup) -> None:
    tmp_path, train, dev = wavlm_pr_setup
    cfg = _pr_cfg(tmp_path, train, dev, 2, trainable=True)
    task = SuperbTask(cfg)
    model = task.build_model()
    before = {k: v.clone() for k, v in model.upstream.state_dict().items()}
    Trainer(cfg.trainer, task, model, tmp_path / "exp").train()
    assert any(not torch.equal(v, before[k]) for k, v in model.upstream.state_dict().items())
    state = torch.load(tmp_path / "exp" / "checkpoint_best.pt", weights_only=True)
    assert any(k.startswith("upstream.model.") for k in state["weights"])  # a fine-tuned upstream is stored
    sb = load_superb(str(tmp_path / "exp" / "checkpoint_best.pt"))
    assert sb.model.upstream.trainable
    for k, v in sb.model.upstream.state_dict().items():
        assert torch.equal(v, state["weights"]["upstream." + k])


def test_superb_table_reads_results(tmp_path) -> None:
    from wavlm.bin.superb_table import main as table

    for tag, task, metric, value in [("wavlm", "pr", "per", 12.5), ("wavlm", "sid", "acc", 80.0),
                                     ("fbank", "pr", "per", 30.25)]:
        d = tmp_path / "exp" / tag / task / "test"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"task": task, "metric": metric, "value": value, "tag": tag,
                                                   "set": "test"}))
    assert table([str(tmp_path / "exp"), "--out", str(tmp_path / "SUPERB.md")]) == 0
    text = (tmp_path / "SUPERB.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|--") and "upstream" not in line}
    assert rows["wavlm"][:4] == ["12.50", "not run", "80.00", "not run"]
    assert rows["fbank"][:3] == ["30.25", "not run", "not run"]
    assert any("WavLM Large" in k for k in rows)  # the paper's rows beside ours


def test_pr_inference_scores_its_hypotheses_and_stores_log_posteriors(wavlm_pr_setup) -> None:
    """superb_infer's PER is that of its hyp file; its log posteriors decode greedily (wavlm.bin.asr_decode) to the
    same text: the LM decoders of asr1 can read them."""
    import editdistance

    from wavlm.bin.asr_decode import main as decode
    from wavlm.bin.superb_infer import main as infer

    tmp_path, train, dev = wavlm_pr_setup
    cfg = _pr_cfg(tmp_path, train, dev, 2)
    task = SuperbTask(cfg)
    Trainer(cfg.trainer, task, task.build_model(), tmp_path / "exp").train()
    assert infer(["--checkpoint", str(tmp_path / "exp" / "checkpoint_best.pt"), "--data", str(dev),
                  "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "result.json").read_text())
    hyp = {ln.split()[0]: ln.split()[1:] for ln in (tmp_path / "eval" / "hyp").read_text().splitlines()}
    ref = {ln.split()[0]: ln.split()[1:] for ln in (dev / "text").read_text().splitlines()}
    errors = sum(editdistance.eval(ref[u], hyp[u]) for u in ref)
    assert result["metric"] == "per" and result["tag"] == "up.pt"
    assert result["value"] == pytest.approx(100 * errors / sum(len(r) for r in ref.values()), abs=1e-3)
    assert decode(["--logprobs", str(tmp_path / "eval" / "logprobs"), "--out", str(tmp_path / "greedy")]) in (0, None)
    text = {ln.split()[0]: ln.split()[1:] for ln in (tmp_path / "greedy" / "text").read_text().splitlines()}
    assert text == hyp


def test_resume_is_exact(wavlm_pr_setup) -> None:
    tmp_path, train, dev = wavlm_pr_setup

    def run(exp, updates):
        cfg = _pr_cfg(tmp_path, train, dev, updates)
        cfg.trainer.schedule.kind = "constant"
        task = SuperbTask(cfg)
        model = task.build_model()
        Trainer(cfg.trainer, task, model, exp).train()
        return model.state_dict()

    whole = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    resumed = run(tmp_path / "b", 4)  # from checkpoint_2.pt, as a new process would
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_ddp_two_ranks_equal_one_process_and_bf16_trains(tmp_path, env) -> None:
    """torchrun with 2 CPU ranks equals one process accumulating the same 2 batches per update (the weighted sum
    and the head go through the model's forward, so DDP averages their gradients); bf16 autocast trains too."""
    import subprocess
    import sys

    train = _tone_dir(tmp_path / "train", SPEAKERS, 2, 0.5, 1)  # 8 utterances: 4 batches of 2 an epoch
    cfg = tmp_path / "sid.yaml"
    cfg.write_text(f"""task: sid
upstream: {{path: fbank}}
head: {{project_dim: 8}}
data: {{train: {train}, valid: {train}, batch_size: 2}}
trainer: {{max_updates: 3, save_interval_updates: 3, valid_interval_updates: 3, num_workers: 0,
          optim: {{lr: 0.01}}, schedule: {{kind: constant}}}}
""")
    base = ["-m", "wavlm.bin.train_superb", "--config", str(cfg), "--exp_dir"]
    one = subprocess.run([sys.executable, *base, str(tmp_path / "one"), "trainer.update_freq=2"], env=env,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *base, str(tmp_path / "ddp")], env=env, capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "checkpoint_last.pt", weights_only=True)["weights"]
    b = torch.load(tmp_path / "ddp" / "checkpoint_last.pt", weights_only=True)["weights"]
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert (tmp_path / "one" / "layer_weights.png").is_file()
    lines = (tmp_path / "one" / "layer_weights.txt").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["0"] and float(lines[0].split()[1]) == pytest.approx(1.0)
    bf16 = subprocess.run([sys.executable, *base, str(tmp_path / "bf16"), "trainer.amp=bf16"], env=env,
                          capture_output=True, text=True)
    assert bf16.returncode == 0, bf16.stderr[-2000:]
    assert "loss nan" not in bf16.stderr and "valid at update 3" in bf16.stderr
