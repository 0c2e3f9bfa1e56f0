"""Reading audio named by Kaldi `wav.scp` entries.

An entry is one of
  * a file path (any format libsndfile reads: wav, flac, ...),
  * a Kaldi pipe `command ... |` whose standard output is a WAV/FLAC stream (e.g. `sox in.sph -t wav - |`),
  * a kaldiio ark offset `file.ark:1234` holding a wav (as Kaldi's `wav-copy` writes).
"""
from __future__ import annotations

import io
import subprocess
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    from wavlm.data.datadir import DataDir

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Audio that cannot be read or used; the message names the utterance and the problem."""


def read_audio(spec: str, *, what: str = "") -> tuple[np.ndarray, int]:
    """Read a wav.scp entry. Returns (float32 samples [S] or [S, C] in [-1, 1], sample rate).

    `what` names the source in error messages (e.g. "data/train/wav.scp:12 (utt 103-1240-0000)").
    """
    where = what or spec
    spec = spec.strip()
    try:
        if spec.endswith("|"):
            proc = subprocess.run(spec[:-1], shell=True, capture_output=True, check=False)
            if proc.returncode != 0:
                raise AudioError(
                    f"{where}: pipe command failed with exit code {proc.returncode}: "
                    f"{proc.stderr.decode(errors='replace').strip()[-500:]}"
                )
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=False)
        elif _is_ark_offset(spec):
            import kaldiio

            sr, data = kaldiio.load_mat(spec)
            data = np.asarray(data)
            if data.dtype.kind == "i":
                data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
            data = data.astype(np.float32)
        else:
            data, sr = sf.read(spec, dtype="float32", always_2d=False)
    except AudioError:
        raise
    except Exception as e:  # soundfile/kaldiio raise many types; name the source for the user
        raise AudioError(f"{where}: cannot read audio: {e}") from e
    return data, int(sr)


def _is_ark_offset(spec: str) -> bool:
    head, sep, tail = spec.rpartition(":")
    return bool(sep) and tail.isdigit() and head.endswith(".ark")


def check_audio(
    wav: np.ndarray,
    sr: int,
    *,
    what: str,
    sample_rate: int = SAMPLE_RATE,
    channel: int | None = None,
    min_samples: int = 1,
) -> np.ndarray:
    """Validate decoded audio for model input and return mono float32 [S].

    Multi-channel audio is an error unless `channel` picks one; a wrong sample rate, NaN/inf,
    empty audio or audio shorter than `min_samples` (e.g. the model's receptive field) are errors.
    """
    if sr != sample_rate:
        raise AudioError(
            f"{what}: sample rate is {sr} Hz, expected {sample_rate} Hz "
            f"(resample it, e.g. with a wav.scp pipe `sox IN -r {sample_rate} -t wav - |`)"
        )
    if wav.ndim == 2:
        if channel is None:
            if wav.shape[1] != 1:
                raise AudioError(
                    f"{what}: audio has {wav.shape[1]} channels; choose one (channel option) "
                    "or downmix it in wav.scp"
                )
            channel = 0
        if not 0 <= channel < wav.shape[1]:
            raise AudioError(f"{what}: channel {channel} requested, audio has {wav.shape[1]}")
        wav = wav[:, channel]
    if wav.size == 0:
        raise AudioError(f"{what}: audio is empty")
    if not np.all(np.isfinite(wav)):
        raise AudioError(f"{what}: audio contains NaN or inf samples")
    if wav.shape[0] < min_samples:
        raise AudioError(
            f"{what}: audio has {wav.shape[0]} samples, fewer than the {min_samples} needed "
            "(the model's receptive field)"
        )
    return np.ascontiguousarray(wav, dtype=np.float32)


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Resample with the sox Python wrapper (sox's high-quality rate effect)."""
    if sr == target_sr:
        return wav
    import sox

    tfm = sox.Transformer()
    tfm.set_output_format(rate=target_sr)
    out = tfm.build_array(input_array=wav, sample_rate_in=sr)
    return np.asarray(out, dtype=np.float32)


def read_utterance(d: DataDir, utt: str, sample_rate: int = 16000) -> np.ndarray:
    """One utterance of a data dir as float32 samples at `sample_rate`; unreadable, wrongly sampled or
    too short audio is an error naming the wav.scp line and the utterance."""
    wav, sr = d.load_audio(utt)
    return check_audio(wav, sr, what=d.describe(utt), sample_rate=sample_rate, min_samples=400)
