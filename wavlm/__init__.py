"""WavLM: model, pre-training and downstream recipes.

    import wavlm
    model = wavlm.load_model(path)   # Microsoft .pt, Hugging Face dir, or a checkpoint of ours
    out = model.extract_features(wav, lengths)
"""
from __future__ import annotations

__version__ = "0.1.0"


def load_model(path, **kwargs):
    """Load a WavLM encoder from a Microsoft `.pt`, a Hugging Face directory or our checkpoint."""
    from wavlm.models.checkpoint import load_model as _load

    return _load(path, **kwargs)


def load_frame_classifier(path, **kwargs):
    """Load a frame classifier (speaker diarization): a Hugging Face WavLMForAudioFrameClassification directory,
    or an SD checkpoint of ours (wavlm.bin.train_superb, task sd). `model(wav, lengths)` gives `.logits`
    [B, T, labels] before the sigmoid and `.lengths` (frames)."""
    from pathlib import Path

    if Path(path).is_file():
        from wavlm.tasks.superb import load_sd_frame_classifier

        return load_sd_frame_classifier(str(path), **kwargs)
    from wavlm.models.frame_classifier import load_frame_classifier as _load

    return _load(path, **kwargs)


__all__ = ["load_model", "load_frame_classifier", "__version__"]
