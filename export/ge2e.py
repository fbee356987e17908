"""The GE2E voice encoder (3-layer LSTM on 40-band mel -> 256-d, ReLU, L2 norm) as a plain module
holding the trained weights that ship inside the ``resemblyzer`` package."""

from __future__ import annotations

import torch
from torch import nn

from . import sources


class GE2E(nn.Module):
    def __init__(self, n_mels: int = 40, hidden: int = 256, layers: int = 3, embedding: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, 40)`` power mel -> ``(batch, 256)`` unit-norm speaker/voice
        embedding."""
        _, (hidden, _) = self.lstm(mels)
        embed = torch.relu(self.linear(hidden[-1]))
        return embed / embed.norm(dim=1, keepdim=True).clamp_min(1e-8)


def load_ge2e(path=None) -> GE2E:
    state = torch.load(path or sources.ge2e_weights(), map_location="cpu", weights_only=True)
    state = state.get("model_state", state)
    model = GE2E()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
    return model.eval()
