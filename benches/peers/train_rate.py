#!/usr/bin/env python3
"""PyTorch peer for one training step of the Dale rate RNN on Go/NoGo (CPU, float64).

Same cell as neurodyn::train (Kim, Li & Sejnowski 2019): x_t = (1-α)x_{t-1} + α(W σ(x_{t-1}) + W_in u_{t-1}) + ξ,
W = relu(W̃)·diag(d), τ = τmin + (τmax-τmin)σ(γ), o_t = w_out·σ(x_t) + b_out, MSE loss, autograd + Adam.
The per-time-step Python loop is how such custom cells are written in PyTorch (no fused kernel).
Usage: python train_rate.py [N] [batch]  -> prints ms per training step (median of 20 after 3 warm-up).
"""
import sys, time, statistics
import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
B = int(sys.argv[2]) if len(sys.argv) > 2 else 16
T = 200
g = torch.Generator().manual_seed(0)
w_raw = (torch.rand(N, N, generator=g) < 0.2) * torch.randn(N, N, generator=g).abs() * 1.5 / (N * 0.2) ** 0.5
w_raw.requires_grad_(True)
d = torch.where(torch.rand(N, generator=g) < 0.2, -1.0, 1.0)
w_in = torch.randn(N, 1, generator=g)
w_out = (torch.randn(N, generator=g) / 100).requires_grad_(True)
b_out = torch.zeros(1, requires_grad=True)
gamma = torch.randn(N, generator=g).requires_grad_(True)
opt = torch.optim.Adam([w_raw, w_out, b_out, gamma], lr=0.01)

def batch():
    go = torch.rand(B, generator=g) < 0.5
    u = torch.zeros(B, T, 1)
    u[go, 50:75, 0] = 1.0
    z = torch.zeros(B, T)
    z[go, 75:] = 1.0
    return u, z

def step():
    u, z = batch()
    W = torch.relu(w_raw) * d
    alpha = 1.0 / (4.0 + 16.0 * torch.sigmoid(gamma))
    x = torch.randn(B, N, generator=g) / 100
    outs = []
    for t in range(1, T):
        x = (1 - alpha) * x + alpha * (torch.sigmoid(x) @ W.T + u[:, t - 1] @ w_in.T) + 0.1 * torch.randn(B, N, generator=g)
        outs.append(torch.sigmoid(x) @ w_out + b_out)
    o = torch.stack(outs, 1)
    loss = ((o - z[:, 1:]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()

for _ in range(3):
    step()
ts = []
for _ in range(20):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print(f"torch {torch.__version__} N={N} batch={B} T={T}: {statistics.median(ts) * 1e3:.2f} ms per training step")
