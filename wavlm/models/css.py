"""Mask-based separator for continuous speech separation (the WavLM paper's LibriCSS system): STFT log
magnitudes, optionally concatenated with a learnable weighted sum of WavLM layers (interpolated to the
STFT frame rate), into espnet2's Conformer encoder; a linear layer and a sigmoid give one mask per speaker
plus one for the noise. The spectral-only separator (`wavlm=None`) is the paper's baseline.

STFT: 640-point sqrt-Hann windows every 320 samples (50% overlap, exact reconstruction), so the
spectrogram runs at WavLM's 50 frames per second; WavLM frames are linearly interpolated to the STFT
frame count (the two differ by the CNN's receptive field at the edges).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wavlm.models.layer_sum import WeightedLayerSum
from wavlm.models.separation import istft, stft
from wavlm.models.wavlm import WavLM

N_FFT, HOP = 640, 320


class MaskSeparator(nn.Module):
    def __init__(self, wavlm: WavLM | None, num_spk: int = 2, conformer: dict | None = None,
                 wavlm_proj: int = 256):
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

        super().__init__()
        self.wavlm = wavlm
        self.num_spk = num_spk
        self.freq = N_FFT // 2 + 1
        in_dim = self.freq
        if wavlm is not None:
            self.layer_sum = WeightedLayerSum(wavlm.num_layers + 1)
            self.wavlm_proj = nn.Linear(wavlm.embed_dim, wavlm_proj)
            in_dim += wavlm_proj
        conf = {"output_size": 256, "attention_heads": 4, "linear_units": 1024, "num_blocks": 16,
                "input_layer": "linear", "use_flash_attn": False, **(conformer or {})}
        self.conformer = ConformerEncoder(in_dim, **conf)
        self.mask = nn.Linear(self.conformer.output_size(), self.freq * (num_spk + 1))
        self.frozen_encoder = False

    def masks(self, wav: Tensor) -> tuple[Tensor, Tensor]:
        """wav [B, S] -> (masks [B, num_spk + 1, F, T] in [0, 1], mixture spectrogram [B, F, T])."""
        spec = stft(wav, N_FFT, HOP)  # [B, F, T]
        feats = torch.log1p(spec.abs()).transpose(1, 2)  # [B, T, F]
        t = feats.shape[1]
        if self.wavlm is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
                states = self.wavlm.extract_features(wav).hidden_states
            if self.frozen_encoder:
                states = tuple(h.detach() for h in states)
            h = self.wavlm_proj(self.layer_sum(states))  # [B, T', D]
            h = F.interpolate(h.transpose(1, 2), size=t, mode="linear", align_corners=False).transpose(1, 2)
            feats = torch.cat([feats, h], dim=-1)
        lens = torch.full((feats.shape[0],), t, dtype=torch.long, device=feats.device)
        out, _, _ = self.conformer(feats, lens)
        m = torch.sigmoid(self.mask(out))  # [B, T, F * (S + 1)]
        m = m.view(m.shape[0], t, self.num_spk + 1, self.freq).permute(0, 2, 3, 1)
        return m, spec

    def forward(self, wav: Tensor, spectra: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """wav [B, S] -> separated waveforms [B, num_spk + 1, S] (speakers, then the noise); with `spectra`,
        (masks, mixture spectrogram) as `masks` gives them (training goes through this forward, so DDP's
        hooks see it)."""
        m, spec = self.masks(wav)
        if spectra:
            return m, spec
        return istft(m * spec.unsqueeze(1), wav.shape[-1], N_FFT, HOP)

    def mvdr(self, wav: Tensor, ref: int = 0, loading: float = 1e-6) -> Tensor:
        """Mask-based MVDR (the 7-channel LibriCSS variant): wav [C, S] -> [num_spk, S].

        Masks come from the reference channel; for each speaker the spatial covariances of the speaker
        (mask-weighted) and of everything else (1 - mask) give the Souden MVDR filter
        w = (Phi_n^-1 Phi_s) u_ref / trace(Phi_n^-1 Phi_s), applied to all channels. Diagonal loading
        (`loading` x the mean channel power) keeps Phi_n invertible.
        """
        m, _ = self.masks(wav[ref:ref + 1])  # [1, S+1, F, T]
        x = stft(wav, N_FFT, HOP)  # [C, F, T]
        xx = torch.einsum("cft,dft->fcdt", x, x.conj())  # [F, C, C, T] outer products
        c = x.shape[0]
        eye = torch.eye(c, dtype=x.dtype, device=x.device)
        outs = []
        for s in range(self.num_spk):
            ms = m[0, s].to(x.real.dtype)  # [F, T]
            phi_s = (xx * ms[:, None, None]).sum(-1) / ms.sum(-1).clamp(min=1e-8)[:, None, None]
            mn = 1.0 - ms
            phi_n = (xx * mn[:, None, None]).sum(-1) / mn.sum(-1).clamp(min=1e-8)[:, None, None]
            power = torch.diagonal(phi_n, dim1=-2, dim2=-1).real.mean(-1).clamp(min=1e-10)
            phi_n = phi_n + (loading * power)[:, None, None] * eye
            num = torch.linalg.solve(phi_n, phi_s)  # [F, C, C]
            trace = torch.diagonal(num, dim1=-2, dim2=-1).sum(-1)
            w = num[..., ref] / (trace + 1e-10)[:, None]
            y = torch.einsum("fc,cft->ft", w.conj(), x)
            outs.append(istft(y, wav.shape[-1], N_FFT, HOP))
        return torch.stack(outs)
