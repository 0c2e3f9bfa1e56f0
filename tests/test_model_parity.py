"""Our WavLM against transformers.WavLMModel with every parameter randomised."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_MODEL, randomise

from wavlm.models.checkpoint import cfg_from_hf, hf_to_official, load_weights
from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.wavlm import WavLM, WavLMConfig, compute_mask_indices

transformers = pytest.importorskip("transformers")

TOL = 1e-4


def hf_config(large: bool, **kw) -> transformers.WavLMConfig:
    base = dict(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        do_stable_layer_norm=large,
        feat_extract_norm="layer" if large else "group",
        conv_bias=large,
        num_buckets=320,
        max_bucket_distance=800,
    )
    base.update(kw)
    return transformers.WavLMConfig(**base)



def build_pair(large: bool, **kw) -> tuple[transformers.WavLMModel, WavLM]:
    hc = hf_config(large, **kw)
    hf = transformers.WavLMModel(hc).eval()
    randomise(hf, seed=1 + large)
    cfg = cfg_from_hf(hc.to_dict(), do_normalize=False)
    ours = WavLM(cfg).eval()
    load_weights(ours, hf_to_official(hf.state_dict(), cfg.extractor_mode), "test")
    return hf, ours


def hf_hidden_states(out) -> tuple[torch.Tensor, ...]:
    """transformers 4.x meaning: the last entry carries the final LayerNorm (5.x leaves it off)."""
    return tuple(out.hidden_states[:-1]) + (out.last_hidden_state,)


def compare(hf, ours, wav: torch.Tensor, lengths: torch.Tensor | None) -> None:
    mask = None if lengths is None else (torch.arange(wav.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        ref = hf(wav, attention_mask=mask, output_hidden_states=True)
        out = ours.extract_features(wav, lengths)
    ref_states = hf_hidden_states(ref)
    assert len(out.hidden_states) == len(ref_states) == ours.num_layers + 1
    if lengths is None:
        frames = torch.full((wav.shape[0],), ref_states[0].shape[1])
    else:
        frames = hf._get_feat_extract_output_lengths(lengths)
    assert out.lengths.tolist() == frames.tolist()
    for i, (a, b) in enumerate(zip(ref_states, out.hidden_states, strict=True)):
        assert a.shape == b.shape
        for j, n in enumerate(frames.tolist()):
            diff = (a[j, :n] - b[j, :n]).abs().max().item()
            assert diff < TOL, f"hidden state {i}, utterance {j}: max abs diff {diff:.2e}"
        assert a.abs().max() > 0.1  # not trivially zero


@pytest.fixture(scope="module", params=[False, True], ids=["base_style", "large_style"])
def pair(request):
    torch.manual_seed(0)
    return build_pair(request.param)


def test_unpadded(pair) -> None:
    hf, ours = pair
    wav = torch.randn(2, 32000)  # 99 frames: relative distances beyond max_exact (80) use log buckets
    compare(hf, ours, wav, None)


def test_padded(pair) -> None:
    hf, ours = pair
    lengths = torch.tensor([32000, 21111, 9000])
    wav = torch.randn(3, 32000) * (torch.arange(32000)[None] < lengths[:, None])
    compare(hf, ours, wav, lengths)


def test_blocked_attention_matches(pair) -> None:
    """Query blocks (used for long inputs to bound memory) give the same result."""
    hf, ours = pair
    lengths = torch.tensor([32000, 20000])
    wav = torch.randn(2, 32000) * (torch.arange(32000)[None] < lengths[:, None])
    attn = [m for m in ours.modules() if hasattr(m, "max_mask_elems")]
    try:
        for m in attn:
            m.max_mask_elems = 2 * 4 * 99 * 7  # 7 query rows per block
        compare(hf, ours, wav, lengths)
    finally:
        for m in attn:
            m.max_mask_elems = 1 << 24


@pytest.mark.parametrize("min_frames, score_elems", [(1, 99 * 5), (1, 1 << 20), (256, 1 << 20)])
def test_per_head_attention_matches(pair, min_frames: int, score_elems: int) -> None:
    """The CPU inference path that attends head by head on oneDNN (blocks of 5 query rows, one block,
    and the default threshold with 300 frames), padded and unpadded."""
    hf, ours = pair
    attn = [m for m in ours.modules() if hasattr(m, "per_head_min_frames")]
    long = min_frames > 1
    n = 96400 if long else 32000  # 300 or 99 frames
    lengths = torch.tensor([n, n - 7000, n // 3])
    wav = torch.randn(3, n) * (torch.arange(n)[None] < lengths[:, None])
    try:
        for m in attn:
            m.per_head_min_frames, m.max_score_elems = min_frames, score_elems
        calls = []
        orig = attn[0]._per_head
        attn[0]._per_head = lambda *a: calls.append(1) or orig(*a)
        compare(hf, ours, wav, lengths)
        compare(hf, ours, wav[:1], None)
        assert len(calls) == 2  # the path under test was taken
    finally:
        for m in attn:
            m.per_head_min_frames, m.max_score_elems = 256, 1 << 20
            m.__dict__.pop("_per_head", None)


def test_small_bucket_config_and_long_cnn_blocks() -> None:
    """Few buckets/short max distance (log buckets saturate), and the CNN's blocked inference path."""
    hf, ours = build_pair(False, num_buckets=16, max_bucket_distance=20, num_hidden_layers=2)
    ours.feature_extractor.block_frames = 20
    compare(hf, ours, torch.randn(1, 40000), None)


def test_num_layers_stops_early(pair) -> None:
    _, ours = pair
    wav = torch.randn(1, 16000)
    with torch.no_grad():
        full = ours.extract_features(wav)
        part = ours.extract_features(wav, num_layers=2)
    assert len(part.hidden_states) == 3
    for a, b in zip(part.hidden_states, full.hidden_states[:3], strict=True):
        torch.testing.assert_close(a, b)


def test_normalize_matches_hf_feature_extractor() -> None:
    hf, ours = build_pair(True)
    ours.cfg.normalize = True
    ours.cfg.normalize_eps = 1e-7
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    wavs = [torch.randn(16000).numpy() * 0.1 + 0.05, torch.randn(11000).numpy() * 0.3]
    inputs = fe(wavs, sampling_rate=16000, padding=True, return_tensors="pt")
    lengths = torch.tensor([16000, 11000])
    raw = torch.zeros(2, 16000)
    raw[0], raw[1, :11000] = torch.from_numpy(wavs[0]), torch.from_numpy(wavs[1])
    with torch.no_grad():
        ref = hf(inputs.input_values, attention_mask=inputs.attention_mask, output_hidden_states=True)
        out = ours.extract_features(raw, lengths)
    for a, b in zip(hf_hidden_states(ref), out.hidden_states, strict=True):
        for j, n in enumerate(out.lengths.tolist()):
            assert (a[j, :n] - b[j, :n]).abs().max() < TOL


def test_grad_path_matches_inference() -> None:
    """Training-mode code paths (no in-place, autograd mask) give the same numbers with dropout off."""
    cfg = WavLMConfig(
        **SMALL_MODEL,
        dropout=0.0,
        attention_dropout=0.0,
        dropout_input=0.0,
        dropout_features=0.0,
        feature_grad_mult=0.5,
    )
    model = WavLM(cfg)
    randomise(model)
    wav, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    model.eval()
    with torch.no_grad():
        ref = model.extract_features(wav, lengths)
    model.train()
    out = model(wav, lengths)
    for a, b in zip(ref.hidden_states, out.hidden_states, strict=True):
        for j, n in enumerate(ref.lengths.tolist()):
            assert (a[j, :n] - b[j, :n]).abs().max() < TOL
    out.last_hidden_state[0, :10].sum().backward()
    assert model.encoder.layers[0].self_attn.relative_attention_bias.weight.grad.abs().sum() > 0
    assert model.encoder.layers[1].self_attn.grep_a.grad.abs().sum() > 0
    assert model.feature_extractor.conv_layers[0][0].weight.grad.abs().sum() > 0


def test_masking_and_layer_sum() -> None:
    cfg = WavLMConfig(
        **SMALL_MODEL,
        mask_prob=0.5,
        mask_length=5,
    )
    model = WavLM(cfg).train()
    wav, lengths = torch.randn(2, 32000), torch.tensor([32000, 20000])
    out = model(wav, lengths, mask=True)
    m = out.mask_indices
    assert m is not None and m.shape == out.padding_mask.shape
    assert m.sum(1).tolist()[0] == m.sum(1).tolist()[1] > 0  # same count per row, as fairseq
    assert not (m & out.padding_mask).any()  # never inside padding
    torch.testing.assert_close(out.encoder_input[m], model.mask_emb.expand(int(m.sum()), -1))
    assert not torch.equal(out.encoder_input[~m], model.mask_emb.expand(int((~m).sum()), -1))
    model.cfg.mask_prob, model.cfg.mask_channel_prob, model.cfg.mask_channel_length = 0.0, 0.3, 4
    x, none = model.apply_mask(torch.ones(2, 50, 64), None)
    assert none is None and 0 < int((x[:, 0] == 0).sum()) < 128 and torch.equal(x[:, 0], x[:, 7])
    spans = compute_mask_indices((3, 100), [100, 80, 60], 0.65, 10, min_masks=2)
    assert spans[:, 80:].sum() >= 0 and spans[2, 60:].sum() == 0
    s = WeightedLayerSum(len(out.hidden_states))
    y = s(out.hidden_states)
    assert y.shape == out.last_hidden_state.shape
    torch.testing.assert_close(y, sum(out.hidden_states) / len(out.hidden_states))


def test_onednn_linear_path() -> None:
    """The CPU inference path of our Linear (oneDNN inner product, fused GELU) equals F.linear, and is
    the path taken on an x86 build of torch (a silent fall-back to MKL's sgemm would halve the speed
    on AMD processors)."""
    import platform

    from wavlm.models.wavlm import Linear, onednn_linear_available

    if platform.machine() in ("x86_64", "AMD64") and torch.backends.mkldnn.is_available():
        assert onednn_linear_available()
    lin = Linear(48, 96)
    randomise(lin)
    x = torch.randn(3, 7, 48)
    ref = torch.nn.functional.linear(x, lin.weight, lin.bias)
    with torch.no_grad():
        torch.testing.assert_close(lin(x), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lin.gelu(x), torch.nn.functional.gelu(ref), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lin(x.transpose(0, 1).contiguous().transpose(0, 1)), ref, atol=1e-5, rtol=1e-5)
    y = lin.gelu(x)  # autograd path
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_first_norm_stats_closed_form() -> None:
    """The first GroupNorm's statistics from the frames' mean and covariance equal those of the conv output
    itself (computed in float64), per utterance, with a DC offset 100x the signal and a conv bias."""
    model = WavLM(WavLMConfig(**SMALL_MODEL, conv_bias=True))
    randomise(model)
    wav = torch.randn(2, 20000) * 0.01 + torch.tensor([[1.0], [-0.3]])
    fe = model.feature_extractor
    with torch.no_grad():
        mean, var = fe.first_norm_stats(wav, block_samples=3333)
        conv = fe.conv_layers[0][0]
        y = torch.nn.functional.conv1d(wav[:, None].double(), conv.weight.double(), conv.bias.double(), stride=5)
    torch.testing.assert_close(mean.double(), y.mean(-1, keepdim=True), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(var.double(), y.var(-1, unbiased=False, keepdim=True), rtol=1e-5, atol=1e-9)
    single = fe.first_norm_stats(wav[1])
    torch.testing.assert_close(single[1], var[1:], rtol=1e-6, atol=0)
