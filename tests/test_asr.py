"""ASR pieces: units, the CTC head's lengths, greedy decoding, LM beam search, fine-tuning from exported
checkpoints (Hugging Face dir, official .pt), the bad-transcript policy."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, make_data_dir

from wavlm.config import from_dict
from wavlm.data.tokenizer import Tokenizer, train_tokenizer
from wavlm.models.checkpoint import save_checkpoint, save_hf
from wavlm.models.ctc import CTCBeamSearch, WavLMForCTC, ctc_greedy
from wavlm.models.wavlm import WavLM, WavLMConfig
from wavlm.tasks.asr import AsrConfig, AsrDataError, AsrTask, ctc_min_frames, load_asr_model
from wavlm.tasks.lm import LmConfig, LmTask
from wavlm.train.trainer import Trainer

TEXTS = ["HELLO WORLD", "THE CAT SAT", "A CAR", "HELLO CAT"]


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    train_tokenizer(TEXTS + ["0123456789"], out, "char")
    return out


def test_char_units_round_trip(units):
    tok = Tokenizer(units)
    assert tok.tokens[0] == "<blank>" and tok.tokens[-1] == "<sos/eos>" and "▁" in tok.tokens
    ids = tok.encode("HELLO CAT")
    assert 0 not in ids and tok.eos not in ids
    assert tok.decode(ids) == "HELLO CAT"
    assert tok.check("HELLO") is None
    assert tok.check("  ") == "empty transcript"
    assert tok.check("ZOO") == "characters outside the unit set: 'Z'"


def test_bpe_units(tmp_path):
    train_tokenizer(["HELLO WORLD THE CAT SAT ON A MAT"] * 50, tmp_path, "bpe", vocab_size=30)
    tok = Tokenizer(tmp_path)
    assert len(tok) == 32 and tok.decode(tok.encode("THE CAT")) == "THE CAT"


def test_ctc_min_frames():
    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 5 + 3  # a blank between each repeated pair


def small_encoder(seed: int = 0) -> WavLM:
    torch.manual_seed(seed)
    return WavLM(WavLMConfig(**SMALL_MODEL))


def test_ctc_head_output_lengths():
    model = WavLMForCTC(small_encoder(), vocab_size=7).eval()
    lengths = torch.tensor([16000, 12345, 4000])
    wav = torch.randn(3, 16000) * (torch.arange(16000)[None] < lengths[:, None])
    logp, frames = model.log_probs(wav, lengths)
    expect = [int((n - 400) // 320 + 1) for n in lengths.tolist()]  # the conv formula of a 25 ms / 20 ms CNN
    assert frames.tolist() == expect
    assert logp.shape == (3, expect[0], 7)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, expect[0]), atol=1e-5)


def test_ctc_greedy_on_constructed_posteriors():
    # frame argmaxes: blank A A blank A B B blank  -> A A B (repeats merge, a blank separates)
    path = [0, 1, 1, 0, 1, 2, 2, 0]
    logp = torch.full((1, len(path), 3), -10.0)
    logp[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    assert ctc_greedy(logp, torch.tensor([8])) == [[1, 1, 2]]
    assert ctc_greedy(logp, torch.tensor([3])) == [[1]]  # only the valid frames count


def _posteriorgram(tok: Tokenizer, frames: list[dict[str, float]]) -> torch.Tensor:
    """Per frame {token: prob}; the rest of the mass on blank."""
    logp = torch.full((len(frames), len(tok)), 1e-6)
    for t, probs in enumerate(frames):
        for piece, p in probs.items():
            logp[t, tok.tokens.index(piece)] = p
        logp[t, 0] = max(1e-6, 1.0 - sum(probs.values()))
    return (logp / logp.sum(-1, keepdim=True)).log()


def test_lm_beam_search_prefers_lm_consistent_hypothesis(units, tmp_path):
    tok = Tokenizer(units)
    # the acoustics slightly prefer "A CAR" over "A CAT"; the LM has only ever seen "A CAT"
    frames = [{"▁": 0.9}, {"A": 0.9}, {"▁": 0.9}, {"C": 0.9}, {"A": 0.9}, {"R": 0.5, "T": 0.4}, {}]
    x = _posteriorgram(tok, frames)
    plain = CTCBeamSearch(len(tok), tok.eos, beam_size=4)
    assert tok.decode(plain(x)) == "A CAR"

    lm_text = tmp_path / "lm.txt"
    lm_text.write_text("A CAT\n" * 40 + "THE CAT SAT\n" * 20)
    cfg = from_dict(LmConfig, {
        "conf": {"embed_unit": 32, "att_unit": 32, "head": 2, "unit": 64, "layer": 1, "dropout_rate": 0.0},
        "data": {"train": [str(lm_text)], "valid": [str(lm_text)], "tokenizer": str(units), "max_tokens": 2000},
        "trainer": {"max_updates": 60, "save_interval_updates": 60, "valid_interval_updates": 60,
                    "num_workers": 0, "optim": {"lr": 5e-3}}})
    task = LmTask(cfg)
    lm_model = task.build_model()
    Trainer(cfg.trainer, task, lm_model, tmp_path / "lm").train()
    fused = CTCBeamSearch(len(tok), tok.eos, beam_size=4, lm=lm_model.lm.eval(), lm_weight=1.0)
    assert tok.decode(fused(x)) == "A CAT"


def asr_cfg(train, valid, units, init="", **data) -> AsrConfig:
    return from_dict(AsrConfig, {
        "model": {"init": init, "preset": "debug", "freeze_updates": 1,
                  "encoder": {"mask_prob": 0.2, "mask_length": 2, "feature_grad_mult": 0.0}},
        "data": {"train": str(train), "valid": str(valid), "tokenizer": str(units), "max_tokens": 64000,
                 "max_sample_size": 64000, **data},
        "trainer": {"max_updates": 2, "save_interval_updates": 2, "valid_interval_updates": 2, "num_workers": 0}})


@pytest.fixture()
def asr_data(tmp_path):
    d = make_data_dir(tmp_path / "train", {"spk1": 3, "spk2": 2}, seconds=1.0)
    from wavlm.data.datadir import compute_utt2dur

    compute_utt2dur(d)
    return d


@pytest.mark.parametrize("fmt", ["hf", "official"])
def test_finetune_from_exported_checkpoint(fmt, asr_data, units, tmp_path):
    enc = small_encoder(seed=3)
    path = tmp_path / ("hf" if fmt == "hf" else "wavlm.pt")
    save_hf(enc, path) if fmt == "hf" else save_checkpoint(path, enc)
    cfg = asr_cfg(asr_data, asr_data, units, init=str(path))
    task = AsrTask(cfg)
    model = task.build_model()
    for k, v in enc.state_dict().items():
        assert torch.equal(model.wavlm.state_dict()[k], v), k
    assert model.wavlm.cfg.mask_prob == 0.2  # fine-tuning overrides applied on top of the checkpoint's config
    exp = tmp_path / "exp"
    Trainer(cfg.trainer, task, model, exp).train()
    asr, tok = load_asr_model(str(exp / "checkpoint_last.pt"))
    assert tok.tokens == Tokenizer(units).tokens
    wav = torch.randn(1, 16000)
    with torch.no_grad():
        a = asr.log_probs(wav)[0]
        b = model.eval().log_probs(wav)[0]
    assert torch.equal(a, b)
    # the encoder part of the ASR checkpoint is an official-format model
    import wavlm

    assert torch.equal(wavlm.load_model(str(exp / "checkpoint_last.pt")).state_dict()["mask_emb"],
                       model.wavlm.state_dict()["mask_emb"])


def _set_text(d, utt, text):
    lines = (d / "text").read_text().splitlines()
    new = f"{utt} {text}".strip()
    (d / "text").write_text("".join(f"{new}\n" if ln.split()[0] == utt else ln + "\n" for ln in lines))


def test_bad_transcripts_skip_with_count_or_fail(asr_data, units, caplog):
    _set_text(asr_data, "spk1-0000", "HELLO ÜWE")  # characters outside the units
    _set_text(asr_data, "spk1-0001", "")  # empty
    _set_text(asr_data, "spk2-0000", "HELLO WORLD " * 12)  # 1 s of audio = 49 frames < 144 units
    with caplog.at_level(logging.WARNING):
        task = AsrTask(asr_cfg(asr_data, asr_data, units))
    assert sorted(task.train_lengths) == ["spk1-0002", "spk2-0001"]
    log = caplog.text
    assert "text:1: utterance spk1-0000: characters outside the unit set: 'Ü'" in log
    assert "utterance spk1-0001: empty transcript" in log
    assert "utterance spk2-0000: 1.00 s of audio gives 49 frames, fewer than the 156 its 144 units need" in log
    assert "skipped 3 of 5 utterances" in log
    with pytest.raises(AsrDataError, match=r"text:1: utterance spk1-0000: characters outside"):
        AsrTask(asr_cfg(asr_data, asr_data, units, bad_utterances="fail"))


def test_no_usable_utterance_is_an_error(asr_data, units):
    for u in ["spk1-0000", "spk1-0001", "spk1-0002", "spk2-0000", "spk2-0001"]:
        _set_text(asr_data, u, "")
    with pytest.raises(AsrDataError, match="no usable utterance"):
        AsrTask(asr_cfg(asr_data, asr_data, units))


def test_random_init_trains_everything(asr_data, units):
    task = AsrTask(asr_cfg(asr_data, asr_data, units))
    model = task.build_model().train()
    task.before_update(model, 0)
    task.loss(model, task.load_batch(sorted(task.train_lengths)[:2], seed=0))[0].backward()
    assert all(p.grad is not None for p in model.wavlm.feature_extractor.parameters())
    assert model.wavlm.encoder.layers[0].fc1.weight.grad is not None


def test_frozen_transformer_gets_no_gradient(asr_data, units, tmp_path):
    save_checkpoint(tmp_path / "init.pt", small_encoder())
    task = AsrTask(asr_cfg(asr_data, asr_data, units, init=str(tmp_path / "init.pt")))
    model = task.build_model().train()
    batch = task.load_batch(sorted(task.train_lengths)[:2], seed=0)
    assert task.find_unused_parameters  # DDP must be told: the Transformer sits out update 0
    task.before_update(model, 0)  # freeze_updates 1: update 0 is frozen
    loss, n, _ = task.loss(model, batch)
    loss.backward()
    assert n == 2.0 and np.isfinite(float(loss.detach()))
    assert model.ctc.ctc_lo.weight.grad is not None
    assert all(p.grad is None for p in model.wavlm.parameters())
    model.zero_grad(set_to_none=True)
    task.before_update(model, 1)
    task.loss(model, batch)[0].backward()
    assert model.wavlm.encoder.layers[0].fc1.weight.grad is not None
    assert all(p.grad is None for p in model.wavlm.feature_extractor.parameters())  # feature_grad_mult 0


def test_resume_gives_the_same_weights(asr_data, units, tmp_path):
    save_checkpoint(tmp_path / "init.pt", small_encoder())

    def train(exp, updates):
        cfg = asr_cfg(asr_data, asr_data, units, init=str(tmp_path / "init.pt"))
        cfg.trainer.max_updates, cfg.trainer.save_interval_updates = updates, 2
        cfg.trainer.schedule.kind = "constant"  # a schedule over max_updates would differ between 2 and 4
        task = AsrTask(cfg)
        model = task.build_model()
        Trainer(cfg.trainer, task, model, exp).train()
        return model.state_dict()

    whole = train(tmp_path / "a", 4)
    train(tmp_path / "b", 2)
    resumed = train(tmp_path / "b", 4)  # a new process would do the same: resume from checkpoint_2.pt
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    fresh = AsrTask(asr_cfg(asr_data, asr_data, units, init=str(tmp_path / "init.pt"))).build_model().state_dict()
    assert not torch.equal(whole["ctc.ctc_lo.weight"], fresh["ctc.ctc_lo.weight"])  # it did train


def test_ddp_two_ranks_equal_one_process_with_accumulation(units, tmp_path, env):
    """The task's training step goes through the model's forward, so DDP averages its gradients: torchrun
    with 2 CPU ranks equals one process accumulating the same 2 batches per update (masking off: each
    rank draws its own masks)."""
    import subprocess
    import sys

    from wavlm.data.datadir import compute_utt2dur

    asr_data = make_data_dir(tmp_path / "train", {"spk1": 4, "spk2": 4}, seconds=1.0)  # 4 batches of 2 an epoch
    compute_utt2dur(asr_data)
    cfg = tmp_path / "asr.yaml"
    cfg.write_text(f"""model: {{preset: debug, encoder: {{mask_prob: 0.0, dropout: 0.0, attention_dropout: 0.0}}}}
data: {{train: {asr_data}, valid: {asr_data}, tokenizer: {units}, max_tokens: 32000, max_sample_size: 32000}}
trainer: {{max_updates: 3, save_interval_updates: 3, valid_interval_updates: 3, num_workers: 0,
          schedule: {{kind: constant}}}}
""")
    base = ["-m", "wavlm.bin.train_asr", "--config", str(cfg), "--exp_dir"]
    one = subprocess.run([sys.executable, *base, str(tmp_path / "one"), "trainer.update_freq=2"], env=env,
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *base, str(tmp_path / "ddp")], env=env, capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "checkpoint_last.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "checkpoint_last.pt", weights_only=True)
    for part in ("model", "ctc"):
        for k in a[part]:
            assert torch.allclose(a[part][k].float(), b[part][k].float(), atol=5e-5), (part, k)


def test_large_checkpoint_with_a_base_schedule_warns(asr_data, units, tmp_path, caplog):
    """fairseq fine-tunes Large with other schedules (vox_*.yaml) than Base: a size mismatch is said."""
    save_checkpoint(tmp_path / "init.pt", small_encoder())
    cfg = asr_cfg(asr_data, asr_data, units, init=str(tmp_path / "init.pt"))
    with caplog.at_level("WARNING"):
        AsrTask(cfg)
    assert "schedule is for" not in caplog.text  # the debug preset is this size
    cfg.model.preset = "base"
    with caplog.at_level("WARNING"):
        AsrTask(cfg)
    assert "has 2 layers of 64 dims, but this config's schedule is for the 'base' preset (12 x 768)" in caplog.text
