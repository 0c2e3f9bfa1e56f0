"""ONNX export of the encoder (python -m wavlm.bin.export --to onnx) run with onnxruntime against our model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL_MODEL, randomise

from wavlm.bin.export import main as export_main
from wavlm.models.checkpoint import load_model, save_checkpoint
from wavlm.models.onnx_export import OnnxExportError, select_layers
from wavlm.models.wavlm import WavLM, WavLMConfig

ort = pytest.importorskip("onnxruntime")

TOL = 1e-4
LARGE_STYLE = dict(extractor_mode="layer_norm", layer_norm_first=True, normalize=True, conv_bias=True)


def random_checkpoint(path: Path, large: bool, seed: int) -> Path:
    """A tiny model with every parameter random (gates, grep_a, the bias table and norms included)."""
    model = WavLM(WavLMConfig(**SMALL_MODEL, **(LARGE_STYLE if large else {})))
    randomise(model, seed, unit=("relative_attention_bias", "grep_a"))  # our names of the bias table and gates
    save_checkpoint(path, model)
    return path


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_against_ours(sess: ort.InferenceSession, model: WavLM, wav: torch.Tensor, lengths: torch.Tensor,
                       layers: list[int]) -> None:
    outs = sess.run(None, {"wav": wav.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        ref = model.extract_features(wav, lengths)
    assert outs[-1].dtype == np.int64 and outs[-1].tolist() == ref.lengths.tolist()
    assert len(outs) == len(layers) + 1
    for i, got in zip(layers, outs[:-1], strict=True):
        want = ref.hidden_states[i].numpy()
        assert got.shape == want.shape, f"hidden state {i}: {got.shape} != {want.shape}"
        for j, n in enumerate(ref.lengths.tolist()):
            diff = np.abs(got[j, :n] - want[j, :n]).max()
            assert diff < TOL, f"hidden state {i}, utterance {j}: max abs diff {diff:.2e}"
        assert np.abs(want).max() > 0.1  # not trivially zero


@pytest.fixture(scope="module", params=[False, True], ids=["base_style", "large_style"])
def exported(request, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("onnx")
    ckpt = random_checkpoint(d / "model.pt", large=request.param, seed=3 + request.param)
    assert export_main(["--to", "onnx", str(ckpt), str(d / "model.onnx")]) == 0
    return ckpt, d / "model.onnx"


def test_all_hidden_states_dynamic_batch_and_length(exported) -> None:
    ckpt, onnx_path = exported
    model = load_model(ckpt)
    sess = session(onnx_path)
    n = model.num_layers
    assert [o.name for o in sess.get_outputs()] == [f"hidden_state_{i}" for i in range(n + 1)] + ["frame_lengths"]
    assert [i.shape for i in sess.get_inputs()] == [["batch", "samples"], ["batch"]]
    g = torch.Generator().manual_seed(0)
    # export traced batch 2 x 1600 samples; here batch 3 x 32000 (99 frames: distances past the exact
    # buckets), padded, with a DC offset and a scale that only the waveform normalisation removes
    wav = 0.01 + 0.02 * torch.randn(3, 32000, generator=g)
    check_against_ours(sess, model, wav, torch.tensor([32000, 21111, 1200]), list(range(n + 1)))
    wav = 0.2 * torch.randn(1, 5003, generator=g)  # unpadded: lengths == S takes our unpadded path
    check_against_ours(sess, model, wav, torch.tensor([5003]), list(range(n + 1)))
    over = sess.run(None, {"wav": wav.numpy(), "lengths": np.array([9999])})  # lengths past S count as S
    for got, want in zip(over, sess.run(None, {"wav": wav.numpy(), "lengths": np.array([5003])}), strict=True):
        np.testing.assert_array_equal(got, want)


def test_one_layer(tmp_path: Path) -> None:
    ckpt = random_checkpoint(tmp_path / "model.pt", large=False, seed=5)
    out = tmp_path / "layer1.onnx"
    assert export_main(["--to", "onnx", str(ckpt), str(out), "--layers", "1", "--opset", "20"]) == 0
    sess = session(out)
    assert [o.name for o in sess.get_outputs()] == ["hidden_state_1", "frame_lengths"]
    wav = 0.1 * torch.randn(2, 9000, generator=torch.Generator().manual_seed(1))
    check_against_ours(sess, load_model(ckpt), wav, torch.tensor([7000, 9000]), [1])


def test_select_layers_and_bad_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert select_layers("all", 2) == [0, 1, 2]
    assert select_layers(None, 2) == [0, 1, 2]
    assert select_layers("2, 0,2", 2) == [0, 2]
    for bad, words in (("3", "must be in 0..2"), ("-1", "must be in 0..2"), ("1,x", "comma-separated integers"),
                       ("", "comma-separated integers")):
        with pytest.raises(OnnxExportError, match=words):
            select_layers(bad, 2)
    ckpt = random_checkpoint(tmp_path / "model.pt", large=False, seed=6)
    out = tmp_path / "bad.onnx"
    with caplog.at_level(logging.ERROR):
        assert export_main(["--to", "onnx", str(ckpt), str(out), "--layers", "7"]) == 1
    assert "--layers '7'" in caplog.text and "0..2" in caplog.text
    with caplog.at_level(logging.ERROR):
        assert export_main(["--to", "onnx", str(ckpt), str(out), "--opset", "14"]) == 1
    assert "opset 18 or newer" in caplog.text
    assert not out.exists()
    with pytest.raises(SystemExit):
        export_main(["--to", "hf", str(ckpt), str(tmp_path / "hf"), "--layers", "1"])
