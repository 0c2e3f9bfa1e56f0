"""The installed environment: the packages the design names and the espnet2 building blocks the tasks
use import (espnet is installed with --no-deps, so a missing runtime dependency shows up here)."""
from __future__ import annotations

import importlib
import shutil

import pytest

MODULES = [
    "wavlm", "kaldiio", "sentencepiece", "sox", "soundfile", "numpy", "yaml", "kaldi_native_fbank", "faiss",
    "editdistance", "jiwer", "tqdm", "pyroomacoustics", "torch.utils.tensorboard", "matplotlib",
    "flashlight.lib.text.decoder", "flashlight.lib.text.decoder.kenlm", "flashlight.lib.text.dictionary",
    # espnet2 building blocks used inside our tasks (espnet2.tasks/bin/frontends need torchaudio: not used)
    "espnet2.asr.ctc", "espnet2.asr.encoder.conformer_encoder", "espnet2.asr.encoder.transformer_encoder",
    "espnet2.asr.specaug.specaug", "espnet.nets.beam_search", "espnet.nets.scorers.ctc",
    "espnet2.lm.transformer_lm", "espnet2.enh.separator.conformer_separator",
    "espnet2.spk.encoder.ecapa_tdnn_encoder", "espnet2.spk.loss.aamsoftmax",
    "espnet2.spk.pooling.chn_attn_stat_pooling", "espnet2.spk.projector.rawnet3_projector",
    "espnet2.lm.espnet_model", "espnet.nets.batch_beam_search", "espnet.nets.scorers.length_bonus",
]


@pytest.mark.parametrize("name", MODULES)
def test_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("tool", ["sox", "espeak-ng", "shellcheck"])
def test_system_tools(tool):
    assert shutil.which(tool), f"{tool} is missing: tools/install.sh installs it (apt) or says how"


def test_no_torchaudio_dependency():
    """torchaudio has no build for torch 2.13: nothing of ours may need it."""
    import sys

    import wavlm.data.datadir  # noqa: F401
    import wavlm.models.wavlm  # noqa: F401
    import wavlm.tasks.asr  # noqa: F401
    import wavlm.tasks.lm  # noqa: F401
    import wavlm.tasks.pretrain  # noqa: F401
    import wavlm.tasks.sv  # noqa: F401

    assert "torchaudio" not in sys.modules
