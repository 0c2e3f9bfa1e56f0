"""Our encoder + x-vector head against transformers.WavLMForXVector with every parameter randomised."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import HF_GATED_BIAS, randomise

from wavlm.models.checkpoint import CheckpointError, read_hf_weights
from wavlm.models.xvector import embed, load_head, load_xvector

transformers = pytest.importorskip("transformers")

TOL = 1e-4
LENGTHS = [16000, 9000, 6000]  # 49, 27 and 18 encoder frames


def hf_config(weighted: bool) -> transformers.WavLMConfig:
    return transformers.WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        use_weighted_layer_sum=weighted,
        tdnn_dim=(16, 16, 16, 16, 24),  # kernels (5, 3, 3, 1, 1), dilations (1, 2, 3, 1, 1): the defaults
        xvector_output_dim=12,
        num_labels=5,
    )



@pytest.fixture(scope="module", params=[True, False], ids=["weighted_sum", "last_layer"])
def pair(request, tmp_path_factory):
    hf = transformers.WavLMForXVector(hf_config(request.param)).eval()
    randomise(hf, 3 + request.param, unit=("layer_weights", *HF_GATED_BIAS))
    d = tmp_path_factory.mktemp("xvector")
    hf.save_pretrained(d)
    encoder, head = load_xvector(d)
    return hf, encoder, head, d


def batch(lengths: list[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(7)
    if lengths is None:
        return torch.randn(2, 16000, generator=g), None
    n = torch.tensor(lengths)
    wav = torch.randn(len(lengths), max(lengths), generator=g) * (torch.arange(max(lengths))[None] < n[:, None])
    return wav, n


def max_diff(hf, encoder, head, lengths: list[int] | None, **kw) -> float:
    wav, n = batch(lengths)
    mask = None if n is None else (torch.arange(wav.shape[1])[None] < n[:, None]).long()
    with torch.no_grad():
        ref = hf(wav, attention_mask=mask).embeddings
        ours = embed(encoder, head, wav, n, **kw)
    assert ours.shape == ref.shape == (wav.shape[0], 12)
    assert ref.abs().max() > 0.1  # not trivially small
    return (ours - ref).abs().max().item()


def test_config_read(pair) -> None:
    hf, encoder, head, _ = pair
    c = head.cfg
    assert c.use_weighted_layer_sum == hf.config.use_weighted_layer_sum
    assert (c.tdnn_dim, c.tdnn_kernel, c.tdnn_dilation) == ((16, 16, 16, 16, 24), (5, 3, 3, 1, 1), (1, 2, 3, 1, 1))
    assert (c.xvector_output_dim, c.num_labels, c.hidden_size, c.num_hidden_layers) == (12, 5, 32, 2)
    assert not head.training and not encoder.training
    hf_sd = {k: v for k, v in hf.state_dict().items() if not k.startswith("wavlm.")}
    ours = head.hf_state_dict()
    assert sorted(ours) == sorted(hf_sd)
    assert all(torch.equal(ours[k], hf_sd[k]) for k in ours)


def test_unpadded(pair) -> None:
    hf, encoder, head, _ = pair
    assert max_diff(hf, encoder, head, None) < TOL


def test_padded(pair) -> None:
    hf, encoder, head, _ = pair
    assert max_diff(hf, encoder, head, LENGTHS) < TOL


def test_tdnn_frames_follow_hf(pair) -> None:
    """HF pools frames - sum(kernel - 1) TDNN frames (dilation ignored), clamped to what exists."""
    hf, encoder, head, _ = pair
    wav, n = batch(LENGTHS)
    with torch.no_grad():
        out = encoder.extract_features(wav, n)
        got = head(out.hidden_states, out.lengths).frames
        exact = head(out.hidden_states, out.lengths, exact_lengths=True).frames
    assert out.lengths.tolist() == [49, 27, 18]
    assert got.tolist() == [35, 19, 10]  # 49 - 14 TDNN frames exist; 27 - 8; 18 - 8
    assert exact.tolist() == [35, 13, 4]  # receptive field 15 frames
    assert hf._get_tdnn_output_lengths(out.lengths).tolist() == [41, 19, 10]


def test_exact_lengths_differ_from_hf(pair) -> None:
    """The padding convention matters: pooling only fully valid frames is not HF's embedding."""
    hf, encoder, head, _ = pair
    assert max_diff(hf, encoder, head, LENGTHS, exact_lengths=True) > 1e-2


def test_perturbed_tdnn_breaks_parity(pair) -> None:
    hf, encoder, head, _ = pair
    w = head.tdnn[2].kernel.weight
    saved = w.detach().clone()
    try:
        with torch.no_grad():
            w.add_(0.05 * torch.randn(w.shape, generator=torch.Generator().manual_seed(0)))
        assert max_diff(hf, encoder, head, None) > 1e-2
    finally:
        with torch.no_grad():
            w.copy_(saved)
    assert max_diff(hf, encoder, head, None) < TOL


def test_layer_weights_matter(pair) -> None:
    hf, encoder, head, _ = pair
    if not head.cfg.use_weighted_layer_sum:
        pytest.skip("no layer weights")
    w = head.layer_sum.weights
    saved = w.detach().clone()
    try:
        with torch.no_grad():
            w.copy_(saved.flip(0))
        assert max_diff(hf, encoder, head, LENGTHS) > 1e-2
    finally:
        with torch.no_grad():
            w.copy_(saved)


def test_plain_wavlm_dir_is_refused(tmp_path: Path) -> None:
    transformers.WavLMModel(hf_config(False)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not a WavLMForXVector directory: no 'tdnn"):
        load_xvector(tmp_path)


def test_missing_and_unexpected_head_keys_are_listed(pair) -> None:
    _, _, _, d = pair
    sd = read_hf_weights(Path(d))
    sd.pop("objective.weight")
    sd["tdnn.9.kernel.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        load_head(d, sd)
    msg = str(e.value)
    assert "missing head keys (1): objective.weight" in msg
    assert "unexpected head keys (1): tdnn.9.kernel.weight" in msg
