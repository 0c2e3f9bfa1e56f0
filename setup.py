"""The `wavlm` package: WavLM model, pre-training and downstream recipes."""
from setuptools import find_packages, setup

setup(
    name="wavlm",
    version="0.1.0",
    description="WavLM recipes: pre-training, ASR, speaker verification, speech separation",
    packages=find_packages(include=["wavlm", "wavlm.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy",
        "pyyaml",
        "kaldiio",
        "soundfile",
        "sentencepiece",
        "sox",
        "kaldi-native-fbank",
        "tqdm",
    ],
    extras_require={"test": ["pytest", "transformers", "safetensors", "ruff"]},
    entry_points={
        "console_scripts": [
            "wavlm-synth=wavlm.bin.synth:main",
            "wavlm-datadir=wavlm.bin.datadir:main",
        ]
    },
)
