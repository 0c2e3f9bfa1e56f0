"""wavlm.load_frame_classifier / export_frame_classifier against transformers' WavLMForAudioFrameClassification.

Tiny random-weight HF dirs (save_pretrained + a feature extractor's preprocessor_config.json). The reference is
transformers fed by the dir's own Wav2Vec2FeatureExtractor, the way Hugging Face runs these checkpoints:
  * return_attention_mask true (Microsoft's SD checkpoints): the extractor normalises over the valid samples and
    returns a mask the model uses. For layer-norm extractors our padded batch must also equal each utterance run
    alone, unpadded; a group-norm extractor's first GroupNorm takes its statistics over the padded length (in the
    released code, in transformers and in our model contract), so there the padded transformers batch is the
    reference;
  * return_attention_mask false (the extractor's default, the wav2vec2-base convention for group-norm models): the
    extractor normalises each zero-padded row as a whole and the model sees no mask.
"""
from __future__ import annotations

import json

import pytest
import torch
from conftest import randomise

import wavlm
from wavlm.bin.export import main as export_main
from wavlm.models.checkpoint import CheckpointError
from wavlm.models.frame_classifier import FrameClassifier, LastHiddenState, export_frame_classifier
from wavlm.models.layer_sum import WeightedLayerSum

transformers = pytest.importorskip("transformers")

TOL = 1e-4
TRANSFORMERS_5 = int(transformers.__version__.split(".")[0]) >= 5

# (name, layer-norm extractor + pre-LN, use_weighted_layer_sum, num_labels, do_normalize, return_attention_mask)
CASES = [
    ("group_weighted_2_mask", False, True, 2, False, True),
    ("group_last_4_nomask_norm", False, False, 4, True, False),
    ("layer_weighted_4_mask_norm", True, True, 4, True, True),
    ("layer_last_2_mask", True, False, 2, False, True),
]


def hf_config(large: bool, weighted: bool, num_labels: int) -> transformers.WavLMConfig:
    return transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_buckets=320, max_bucket_distance=800,
        feat_extract_norm="layer" if large else "group", do_stable_layer_norm=large, conv_bias=large,
        use_weighted_layer_sum=weighted, num_labels=num_labels,
        id2label={i: f"spk{i + 1}" for i in range(num_labels)}, label2id={f"spk{i + 1}": i for i in range(num_labels)},
        architectures=["WavLMForAudioFrameClassification"])


def reference(d) -> transformers.WavLMForAudioFrameClassification:
    """The dir in transformers, with transformers 4.x's last hidden state (5.x: tie_last_hidden_states)."""
    ref = transformers.WavLMForAudioFrameClassification.from_pretrained(d).eval()
    ref.config.tie_last_hidden_states = True
    return ref


def make_dir(path, large: bool, weighted: bool, num_labels: int, normalize: bool, mask: bool, seed: int = 0):
    hf = transformers.WavLMForAudioFrameClassification(hf_config(large, weighted, num_labels))
    randomise(hf, seed)
    if weighted:
        with torch.no_grad():  # far from uniform, so a wrong state order shows
            hf.layer_weights.copy_(torch.randn(3, generator=torch.Generator().manual_seed(seed)) * 2)
    hf.save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=normalize, return_attention_mask=mask).save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request, tmp_path_factory):
    name, large, weighted, num_labels, normalize, mask = request.param
    d = make_dir(tmp_path_factory.mktemp(name), large, weighted, num_labels, normalize, mask)
    return request.param, d, reference(d), wavlm.load_frame_classifier(d)


def batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random utterances padded with random values (which must not matter)."""
    g = torch.Generator().manual_seed(seed)
    wav = 0.3 * torch.randn(len(lengths), max(lengths), generator=g) + 0.05
    return wav, torch.tensor(lengths)


def hf_logits(ref, d, utts: list[torch.Tensor]) -> torch.Tensor:
    """transformers on the utterances as its feature extractor prepares them (padded to the longest)."""
    fe = transformers.AutoFeatureExtractor.from_pretrained(d)
    inputs = fe([u.numpy() for u in utts], sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.no_grad():
        return ref(**inputs).logits


def assert_close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = (a - b).abs().max().item()
    assert diff < TOL, f"{what}: max abs diff {diff:.2e}"


def test_structure_and_labels(case) -> None:
    (_, _, weighted, num_labels, normalize, mask), _, _, model = case
    assert isinstance(model, FrameClassifier)
    assert isinstance(model.featurizer, WeightedLayerSum if weighted else LastHiddenState)
    assert model.labels == [f"spk{i + 1}" for i in range(num_labels)] and model.num_labels == num_labels
    assert model.attention_mask is mask and model.upstream.model.cfg.normalize is normalize
    assert not model.training and all(not p.requires_grad for p in model.upstream.parameters())
    assert model.head.weight.requires_grad
    names = {k.split(".")[0] for k in model.state_dict()}
    assert names == {"upstream", "head"} | ({"featurizer"} if weighted else set())


def test_unpadded_equals_transformers(case) -> None:
    _, d, ref, model = case
    wav, _ = batch([24000, 24000])
    with torch.no_grad():
        out = model(wav)
    expected = hf_logits(ref, d, list(wav))
    assert_close(out.logits, expected, "logits")
    assert out.lengths.tolist() == [expected.shape[1]] * 2
    assert expected.abs().max() > 0.1


def test_padded_batch(case) -> None:
    (_, large, _, _, _, mask), d, ref, model = case
    lengths = [24000, 17011, 6400]
    wav, lens = batch(lengths, seed=1)
    with torch.no_grad():
        out = model(wav, lens)
    frames = ref._get_feat_extract_output_lengths(lens)
    assert out.lengths.dtype == torch.long and out.lengths.tolist() == frames.tolist()
    utts = [wav[i, :n] for i, n in enumerate(lengths)]
    expected = hf_logits(ref, d, utts)
    for i, n in enumerate(frames.tolist()):
        assert_close(out.logits[i, :n], expected[i, :n], f"utterance {i}, batched transformers")
        if large and mask:  # padding-invariant: equal to the utterance alone
            assert_close(out.logits[i, :n], hf_logits(ref, d, [utts[i]])[0], f"utterance {i}, alone")


def test_pre_ln_weighted_sum_uses_the_final_layer_norm(tmp_path) -> None:
    """Our last hidden state carries a pre-LN encoder's final LayerNorm (the model contract, transformers 4.x);
    transformers 5.x leaves it off unless config.tie_last_hidden_states, and then gives other logits."""
    d = make_dir(tmp_path / "hf", True, True, 2, False, True)
    model = wavlm.load_frame_classifier(d)
    wav, _ = batch([16000])
    with torch.no_grad():
        ours = model(wav).logits
        plain = transformers.WavLMForAudioFrameClassification.from_pretrained(d).eval()(wav).logits
    assert_close(ours, reference(d)(wav).logits.detach(), "logits with tie_last_hidden_states")
    if TRANSFORMERS_5:
        assert (ours - plain).abs().max() > 1e-3


def test_export_round_trip(case, tmp_path) -> None:
    (_, _, weighted, num_labels, normalize, mask), _, _, model = case
    out_dir = tmp_path / "export"
    export_frame_classifier(model, out_dir)
    loaded, info = transformers.WavLMForAudioFrameClassification.from_pretrained(out_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    config = json.loads((out_dir / "config.json").read_text())
    assert config["architectures"] == ["WavLMForAudioFrameClassification"] and config["model_type"] == "wavlm"
    assert config["use_weighted_layer_sum"] is weighted and config["num_labels"] == num_labels
    assert loaded.config.id2label == {i: f"spk{i + 1}" for i in range(num_labels)}
    pre = json.loads((out_dir / "preprocessor_config.json").read_text())
    assert pre["do_normalize"] is normalize and pre["return_attention_mask"] is mask
    assert pre["sampling_rate"] == 16000 and pre["feature_size"] == 1 and pre["padding_value"] == 0
    lengths = [20000, 13333]
    wav, lens = batch(lengths, seed=2)
    with torch.no_grad():
        ours = model(wav, lens)
    expected = hf_logits(loaded.eval(), out_dir, [wav[i, :n] for i, n in enumerate(lengths)])
    for i, n in enumerate(ours.lengths.tolist()):
        assert_close(ours.logits[i, :n], expected[i, :n], f"exported, utterance {i}")
    again = wavlm.load_frame_classifier(out_dir)
    with torch.no_grad():
        assert_close(again(wav, lens).logits, ours.logits, "reloaded export")


def test_pytorch_model_bin(tmp_path) -> None:
    """Weights as pytorch_model.bin (older dirs) load as from model.safetensors."""
    from safetensors.torch import load_file

    d = make_dir(tmp_path / "hf", False, True, 2, False, True)
    wav, _ = batch([16000])
    with torch.no_grad():
        expected = wavlm.load_frame_classifier(d)(wav).logits
    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()
    with torch.no_grad():
        assert_close(wavlm.load_frame_classifier(d)(wav).logits, expected, "from pytorch_model.bin")


def test_export_cli_and_labels(tmp_path) -> None:
    d = make_dir(tmp_path / "hf", False, True, 2, False, True)
    assert export_main(["--to", "hf_frame_classifier", str(d), str(tmp_path / "cli")]) == 0
    assert wavlm.load_frame_classifier(tmp_path / "cli").labels == ["spk1", "spk2"]
    export_frame_classifier(wavlm.load_frame_classifier(d), tmp_path / "named", labels=["a", "b"])
    config = json.loads((tmp_path / "named" / "config.json").read_text())
    assert config["id2label"] == {"0": "a", "1": "b"} and config["label2id"] == {"a": 0, "b": 1}
    with pytest.raises(ValueError, match="3 labels"):
        export_frame_classifier(wavlm.load_frame_classifier(d), tmp_path / "bad", labels=["a", "b", "c"])


def test_bad_inputs(tmp_path) -> None:
    encoder = tmp_path / "encoder"
    transformers.WavLMModel(hf_config(False, False, 2)).save_pretrained(encoder)
    config = json.loads((encoder / "config.json").read_text())
    config["architectures"] = ["WavLMModel"]
    (encoder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"encoder/config.json: architectures \['WavLMModel'\]"):
        wavlm.load_frame_classifier(encoder)
    with pytest.raises(ValueError, match="nothing.pt: not a frame classifier"):
        wavlm.load_frame_classifier(tmp_path / "nothing.pt")
    d = make_dir(tmp_path / "hf", False, True, 2, False, True)
    config = json.loads((d / "config.json").read_text())
    config["id2label"] = {str(i): f"s{i}" for i in range(3)}  # the classifier has 2 outputs
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"classifier.weight: checkpoint \(2, 32\) vs config.json \(3, 32\)"):
        wavlm.load_frame_classifier(d)
