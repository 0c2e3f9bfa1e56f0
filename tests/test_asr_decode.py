"""Decoding at scale: CTC log posteriors computed once in padded, length-sorted batches (each utterance's equal to
what it gives alone), stored as ark/scp with their units, then decoded greedy or by espnet's beam search from
the store in sharded, resumable jobs; batched greedy text equals one-at-a-time text; bad input is named."""
from __future__ import annotations

import json

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SMALL_MODEL

from wavlm.bin import asr_decode, ctc_logprobs
from wavlm.data.datadir import compute_utt2dur
from wavlm.data.tokenizer import Tokenizer, train_tokenizer
from wavlm.decode.decoders import BeamSearchDecoder, GreedyDecoder
from wavlm.decode.logprobs import LogProbsDir, plan_batches
from wavlm.models.ctc import CTCBeamSearch, WavLMForCTC, ctc_greedy
from wavlm.models.wavlm import WavLM, WavLMConfig

TEXTS = ["HELLO WORLD", "THE CAT SAT", "A CAR", "HELLO CAT"]


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    out = tmp_path_factory.mktemp("units")
    train_tokenizer(TEXTS, out, "char")
    return out


def ctc_model(vocab: int, seed: int = 0, **cfg) -> WavLMForCTC:
    torch.manual_seed(seed)
    model = WavLMForCTC(WavLM(WavLMConfig(**{**SMALL_MODEL, **cfg})), vocab).eval()
    with torch.no_grad():  # a peakier head than the default init, so the arg max path spells many units
        model.ctc.ctc_lo.weight.mul_(4.0)
    return model


def save_asr_checkpoint(path, model: WavLMForCTC, tok: Tokenizer):
    """What AsrTask.model_state stores (a checkpoint of wavlm.bin.train_asr)."""
    torch.save({"cfg": model.wavlm.cfg.to_official(), "model": model.wavlm.state_dict(), "ctc": model.head_state(),
                "task": "asr", "tokens": list(tok.tokens),
                "spm_model": torch.frombuffer(bytearray(tok.model_bytes), dtype=torch.uint8)}, path)
    return path


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """12 utterances of 0.3-2.5 s of amplitude-modulated noise, in a data dir with utt2dur."""
    d = tmp_path_factory.mktemp("test_set")
    rng = np.random.default_rng(0)
    wav_scp = []
    for i in range(12):
        n = int(rng.uniform(0.3, 2.5) * 16000)
        x = 0.1 * rng.standard_normal(n) * (1.2 + np.sin(np.arange(n) / rng.uniform(300, 1500)))
        sf.write(d / f"utt{i:02d}.wav", x.astype(np.float32), 16000)
        wav_scp.append(f"utt{i:02d} {d}/utt{i:02d}.wav\n")
    (d / "wav.scp").write_text("".join(wav_scp))
    (d / "utt2spk").write_text("".join(f"utt{i:02d} utt{i:02d}\n" for i in range(12)))
    compute_utt2dur(d)
    return d


@pytest.fixture(scope="module")
def asr_ckpt(tmp_path_factory, units):
    tok = Tokenizer(units)
    return save_asr_checkpoint(tmp_path_factory.mktemp("asr") / "checkpoint_best.pt", ctc_model(len(tok)), tok)


def one_at_a_time(model: WavLMForCTC, wav: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return model.log_probs(torch.from_numpy(wav)[None])[0][0]


def read_wavs(d) -> dict[str, np.ndarray]:
    return {line.split()[0]: sf.read(line.split()[1], dtype="float32")[0]
            for line in (d / "wav.scp").read_text().splitlines()}


# ---- the batched encoder pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("extractor", ["default", "layer_norm"])
def test_batched_log_probs_equal_one_at_a_time(extractor):
    cfg = {} if extractor == "default" else {"extractor_mode": "layer_norm", "normalize": True,
                                            "layer_norm_first": True}
    model = ctc_model(9, **cfg)
    rng = np.random.default_rng(1)
    wavs = [(0.1 * rng.standard_normal(n) + 0.05).astype(np.float32) for n in (16000, 9000, 4321)]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(3, 16000)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.inference_mode():
        ours = model.utterance_log_probs(batch, lengths)
        released = model.log_probs(batch, lengths)[0]
    for i, w in enumerate(wavs):
        alone = one_at_a_time(model, w)
        assert ours[i].shape == alone.shape
        assert (ours[i] - alone).abs().max() < 1e-4, i
        if extractor == "default" and i > 0:  # the released code's GroupNorm sees the padding
            assert (released[i, : alone.shape[0]] - alone).abs().max() > 1e-3


def test_plan_batches_longest_first_within_the_cap():
    lengths = [5, 50, 20, 21, 19, 200, 6]
    batches = plan_batches(lengths, 60)
    assert batches == [[5], [1], [3, 2], [4, 6, 0]]  # 200 alone (over the cap), then sorted, <= 60 padded
    assert plan_batches(lengths, 0) == [[5], [1], [3], [2], [4], [6], [0]]  # 0: one utterance per batch
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches[1:]:
        assert len(b) * max(lengths[i] for i in b) <= 60


def test_logprob_dump_matches_one_at_a_time_and_resumes(asr_ckpt, test_set, units, tmp_path):
    out = tmp_path / "lp"
    args = ["--model", str(asr_ckpt), "--data", str(test_set), "--out", str(out), "--nj", "2",
            "--batch_seconds", "4", "--device", "cpu"]
    assert ctc_logprobs.main(args) == 0
    dump = LogProbsDir(out)
    wavs = read_wavs(test_set)
    assert dump.utts() == sorted(wavs) and dump.tokenizer.tokens == Tokenizer(units).tokens
    assert (out / "tokens.txt").read_text().splitlines() == Tokenizer(units).tokens
    info = json.loads((out / "logprobs_info.json").read_text())
    assert info["frame_rate"] == 50.0 and info["vocab_size"] == len(Tokenizer(units)) and info["blank"] == 0
    model = ctc_model(len(Tokenizer(units)))
    for utt, lp in dump.items(dump.utts()):
        alone = one_at_a_time(model, wavs[utt]).numpy()
        assert lp.dtype == np.float32 and lp.shape == alone.shape
        assert np.abs(lp - alone).max() < 1e-4, utt
        assert np.allclose(np.exp(lp).sum(1), 1.0, atol=1e-4)
    nframes = dict(line.split() for line in (out / "utt2num_frames").read_text().splitlines())
    assert {u: int(n) for u, n in nframes.items()} == {u: m.shape[0] for u, m in dump.items(dump.utts())}
    job_info = json.loads((out / "logprobs.1.json").read_text())
    assert job_info["num_utts"] == 6 and job_info["padded_seconds"] >= job_info["audio_seconds"] > 0

    # a rerun (also with another batch size: the output does not depend on it) recomputes nothing
    arks = {p: p.stat().st_mtime_ns for p in out.glob("logprobs.*.ark")}
    assert ctc_logprobs.main([*args[:-4], "--batch_seconds", "1", "--device", "cpu"]) == 0
    assert {p: p.stat().st_mtime_ns for p in arks} == arks
    # a retrained model at the same path is not taken for done
    save_asr_checkpoint(asr_ckpt.parent / "other.pt", ctc_model(len(Tokenizer(units)), seed=5), Tokenizer(units))
    (asr_ckpt.parent / "other.pt").replace(asr_ckpt)
    try:
        assert ctc_logprobs.main(args) == 0
        assert all(p.stat().st_mtime_ns != t for p, t in arks.items())
    finally:
        save_asr_checkpoint(asr_ckpt, model, Tokenizer(units))


# ---- decoding from the stored log posteriors -------------------------------------------------------------


@pytest.fixture(scope="module")
def dump(asr_ckpt, test_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("dump") / "lp"
    assert ctc_logprobs.main(["--model", str(asr_ckpt), "--data", str(test_set), "--out", str(out),
                              "--batch_seconds", "6", "--num_workers", "1", "--device", "cpu"]) == 0
    return out


def read_text(path) -> dict[str, str]:
    return {(p := line.split(" ", 1))[0]: p[1] if len(p) > 1 else "" for line in path.read_text().splitlines()}


def test_batched_greedy_text_equals_one_at_a_time(asr_ckpt, test_set, dump, units, tmp_path):
    tok = Tokenizer(units)
    model = ctc_model(len(tok))
    expect = {}
    for utt, wav in read_wavs(test_set).items():  # the old decoder: one utterance per forward, greedy
        logp = one_at_a_time(model, wav)
        expect[utt] = tok.decode(ctc_greedy(logp[None], torch.tensor([logp.shape[0]]))[0])
    assert sum(len(t) for t in expect.values()) > 100  # the random model spells something
    assert asr_decode.main(["--logprobs", str(dump), "--out", str(tmp_path / "a"), "--nj", "3"]) == 0
    assert read_text(tmp_path / "a" / "text") == expect
    # --model --data: the same batched pass in the decoding job
    assert asr_decode.main(["--model", str(asr_ckpt), "--data", str(test_set), "--out", str(tmp_path / "b"),
                            "--batch_seconds", "3"]) == 0
    assert read_text(tmp_path / "b" / "text") == expect


def test_beam_search_on_log_probs_equals_espnet_on_hidden_states(units, test_set):
    """The old path: espnet's CTCPrefixScorer on the encoder output through the CTC module."""
    from espnet.nets.batch_beam_search import BatchBeamSearch
    from espnet.nets.scorers.ctc import CTCPrefixScorer
    from espnet.nets.scorers.length_bonus import LengthBonus

    tok = Tokenizer(units)
    model = ctc_model(len(tok))
    v = len(tok)
    old = BatchBeamSearch(scorers={"ctc": CTCPrefixScorer(model.ctc, tok.eos), "length_bonus": LengthBonus(v)},
                          weights={"ctc": 1.0, "length_bonus": 0.5}, beam_size=4, vocab_size=v, sos=tok.eos,
                          eos=tok.eos, pre_beam_score_key=None).eval()
    new = CTCBeamSearch(v, tok.eos, beam_size=4, length_bonus=0.5)
    for utt, wav in list(read_wavs(test_set).items())[:3]:
        with torch.inference_mode():
            hidden = model.encode(torch.from_numpy(wav)[None], None).hidden[0]
            ref = old(x=hidden, maxlenratio=0.0, minlenratio=0.0)
            ours = new.nbest(model.ctc.log_softmax(hidden[None])[0])
        assert [(h.yseq.tolist()[1:-1]) for h in ref] == [ids for ids, _ in ours], utt
        assert np.allclose([float(h.score) for h in ref], [s for _, s in ours], atol=1e-4)


def test_decoders_share_one_interface(units):
    tok = Tokenizer(units)
    lp = np.full((6, len(tok)), -20.0, dtype=np.float32)
    for t, piece in enumerate(["A", "A", "<blank>", "A", "▁", "C"]):
        lp[t, tok.tokens.index(piece)] = 0.0
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    for dec in (GreedyDecoder(tok), BeamSearchDecoder(tok, beam_size=3)):
        assert dec(lp) == "AA C"
        best = dec.nbest(lp, 2)
        assert 1 <= len(best) <= 2 and best[0][0] == "AA C" and best[0][1] == pytest.approx(lp.max(1).sum(), abs=1e-3)


def test_decode_jobs_merge_and_resume(dump, tmp_path):
    out = tmp_path / "beam"
    base = ["--logprobs", str(dump), "--out", str(out), "--nj", "2", "--beam_size", "3"]
    for job in ("1", "2"):
        assert asr_decode.main([*base, "--job", job, "--num_threads", "1"]) == 0
    assert not (out / "text").exists()
    assert asr_decode.main([*base, "--merge"]) == 0
    hyps = read_text(out / "text")
    assert list(hyps) == LogProbsDir(dump).utts()
    stats = json.loads((out / "text.1.json").read_text())
    assert stats["num_utts"] == 6 and stats["audio_seconds"] > 0 and not stats["encoder_included"]
    stamp = (out / "text.1.txt").stat().st_mtime_ns
    assert asr_decode.main(base) == 0  # done with the same options: skipped
    assert (out / "text.1.txt").stat().st_mtime_ns == stamp
    assert asr_decode.main([*base, "--length_bonus", "1.0"]) == 0  # other options: decoded again
    assert (out / "text.1.txt").stat().st_mtime_ns != stamp


# ---- bad input ------------------------------------------------------------------------------------------


def test_bad_input_is_named(asr_ckpt, test_set, dump, tmp_path, capsys):
    def fails(main, args, *words):
        capsys.readouterr()
        assert main(args) == 1
        err = capsys.readouterr().err
        msg = " ".join(line for line in err.splitlines() if " ERROR: " in line)
        for w in words:
            assert w in msg, (w, msg)
        assert "Traceback" not in err

    out = str(tmp_path / "o")
    fails(asr_decode.main, ["--out", out], "--logprobs")
    fails(asr_decode.main, ["--logprobs", str(dump), "--model", str(asr_ckpt), "--out", out], "either")
    fails(asr_decode.main, ["--logprobs", str(tmp_path), "--out", out], "logprobs.scp", "ctc_logprobs")
    fails(asr_decode.main, ["--logprobs", str(dump), "--out", out, "--lm", "x.pt"], "--lm needs --beam_size")
    # a stored matrix whose width is not the number of units
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("tokens.txt", "spm.model", "logprobs_info.json"):
        (bad / name).write_bytes((dump / name).read_bytes())
    with kaldiio.WriteHelper(f"ark,scp:{bad}/m.ark,{bad}/logprobs.scp") as w:
        w("utt00", np.zeros((5, 3), dtype=np.float32))
    fails(asr_decode.main, ["--logprobs", str(bad), "--out", out], "utt00", "(5, 3)", "tokens.txt")
    # unreadable audio: the message names the wav.scp line, not a DataLoader worker's traceback
    broken = tmp_path / "data"
    broken.mkdir()
    lines = (test_set / "wav.scp").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " " + str(tmp_path / "missing.wav")
    (broken / "wav.scp").write_text("\n".join(lines) + "\n")
    fails(ctc_logprobs.main, ["--model", str(asr_ckpt), "--data", str(broken), "--out", out, "--device", "cpu"],
          f"{broken}/wav.scp:4", "utt03")
