"""Reuse AGIN and GroupInstanceNorm in a network of your own.

    python examples/reuse_agin.py

A tiny style-conditioned conv net. In its first block an MLP maps a condition vector to per-channel
gamma and beta for AGIN, as agincolor's generator does from its attention features; the second block
picks its norm by name from the registry, get_norm_layer("gin"). The net learns to tint random images
with a colour given by the condition. clip_rho_ after every optimizer step keeps each rho in [0, 1]
(eq. 3 of Gao et al. 2020): rho near 1 means group norm, near 0 instance norm. Runs in seconds on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agincolor import AGIN, clip_rho_, get_norm_layer


class StyledBlock(nn.Module):
    """conv -> AGIN with gamma, beta predicted from the condition -> ReLU."""

    def __init__(self, channels: int, cond_dim: int, num_groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = AGIN(channels, num_groups=num_groups)
        self.to_affine = nn.Sequential(nn.Linear(cond_dim, 32), nn.ReLU(), nn.Linear(32, 2 * channels))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.to_affine(cond).chunk(2, dim=1)  # each (N, C)
        return F.relu(self.norm(self.conv(x), 1 + gamma, beta))


class TintNet(nn.Module):
    def __init__(self, cond_dim: int = 3, channels: int = 16, num_groups: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.styled = StyledBlock(channels, cond_dim, num_groups)
        norm = get_norm_layer("gin")  # any registered name works here: "agin", "gin", "in", "gn", "bn"
        self.plain = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), norm(channels, num_groups=num_groups), nn.ReLU()
        )
        self.head = nn.Conv2d(channels, 3, 1)

    def forward(self, gray: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.plain(self.styled(self.stem(gray), cond)))


def main(steps: int = 80, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)
    gray = torch.rand(16, 1, 32, 32)
    cond = torch.rand(16, 3)  # the tint, an RGB colour
    target = gray * cond[:, :, None, None]
    net = TintNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        loss = F.l1_loss(net(gray, cond), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clip_rho_(net)  # the projection of eq. 3, after every step
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {loss.item():.4f}")
    for name, layer in (("AGIN", net.styled.norm), ("GIN", net.plain[1])):
        rho = layer.rho.flatten().tolist()
        print(f"{name} rho after clip_rho_: " + " ".join(f"{r:.2f}" for r in rho))
    return losses


if __name__ == "__main__":
    main()
