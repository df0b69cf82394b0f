#!/usr/bin/env python3
"""PyTorch peer for one training step on sequential digits (784 steps, one pixel per step, float32).

The same cells as neurodyn::train::cell, written the way custom cells are written in PyTorch: a
Python loop over time steps, autograd, Adam. Inputs: the first `batch` images of the bundled MNIST
slice (models/mnist-slice), pixel/255; cross-entropy on the last step's read-out.
  rate:     x' = x + α(−x + W tanh(x) + W_in u), α = 1/(1 + 3σ(γ)); read-out from tanh(x_T)
  gamma:    h' = γ(U u + V h + b; n, s), γ = (1−s) softplus(n a)/n + s σ(n a); read-out from h_T
  organics: the Euler RNN of Rawat, Heeger & Martiniani (2024) (κ_max = 0.01, 0.01, 0.1; σ = 1); read-out from y_T
Usage: python train_seq.py CELL N BATCH [cpu|cuda] -> ms per training step (median of 5 after 2 warm-up).
"""
import gzip, os, statistics, sys, time
import numpy as np
import torch
import torch.nn.functional as F

cell, N, B = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dev = sys.argv[4] if len(sys.argv) > 4 else "cpu"
torch.set_num_threads(2)
torch.manual_seed(0)
root = os.path.join(os.path.dirname(__file__), "..", "..", "models", "mnist-slice")
img = np.frombuffer(gzip.open(os.path.join(root, "train-images-idx3-ubyte.gz")).read()[16:], np.uint8)
lab = np.frombuffer(gzip.open(os.path.join(root, "train-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
x = torch.tensor(img[: B * 784].reshape(B, 784, 1) / 255.0, dtype=torch.float32, device=dev)
y = torch.tensor(lab[:B].astype(np.int64), device=dev)


def P(*shape, scale=1.0):
    return (torch.randn(*shape, device=dev) * scale).requires_grad_(True)


if cell == "rate":
    W, Win, gam = P(N, N, scale=1.5 / N**0.5), P(N, 1), P(N)
    params = [W, Win, gam]

    def run():
        a = 1.0 / (1.0 + 3.0 * torch.sigmoid(gam))
        h = torch.zeros(B, N, device=dev)
        for t in range(784):
            h = h + a * (-h + torch.tanh(h) @ W.T + x[:, t] @ Win.T)
        return torch.tanh(h)
elif cell == "gamma":
    U, V, b = P(N, 1, scale=2**0.5), P(N, N, scale=1 / N**0.5), P(N, scale=0.1)
    n = (5 + 2 * torch.rand(N, device=dev)).requires_grad_(True)
    s = torch.zeros(N, device=dev).requires_grad_(True)
    params = [U, V, b, n, s]

    def run():
        h = torch.zeros(B, N, device=dev)
        for t in range(784):
            a = x[:, t] @ U.T + h @ V.T + b
            h = (1 - s) * F.softplus(n * a) / n + s * torch.sigmoid(n * a)
        return h
elif cell == "organics":
    Wzx, Wr = P(N, 1, scale=0.5), P(N, N, scale=1 / N**0.5)
    Wb = [P(N, 1), P(N, N, scale=1 / N**0.5), P(N, N, scale=1 / N**0.5), P(N, 1), P(N, N, scale=1 / N**0.5), P(N, N, scale=1 / N**0.5)]
    logW, th = P(N, N, scale=0.3), [P(N) for _ in range(4)]
    params = [Wzx, Wr, logW] + Wb + th
    init = [torch.rand(N, device=dev) for _ in range(4)]

    def run():
        Wn = torch.clamp(logW.exp(), 0, 1)
        ky, ka, kb0, kb1 = 0.01 * torch.sigmoid(th[0]), 0.01 * torch.sigmoid(th[1]), 0.1 * torch.sigmoid(th[2]), 0.1 * torch.sigmoid(th[3])
        yy, aa, b0, b1 = [v.expand(B, N) for v in init]
        for t in range(784):
            u = x[:, t]
            z = F.relu(u @ Wzx.T)
            yh = F.relu(yy @ Wr.T)
            B0 = torch.sigmoid(u @ Wb[0].T + yy @ Wb[1].T + aa @ Wb[2].T)
            B1 = torch.sigmoid(u @ Wb[3].T + yy @ Wb[4].T + aa @ Wb[5].T)
            ny = yy + ky * (-yy + b1 * z + (1 - torch.sqrt(F.relu(aa))) * yh)
            na = aa + ka * (-aa + b0**2 + (F.relu(yy) ** 2 * F.relu(aa)) @ Wn.T)
            b0, b1 = b0 + kb0 * (-b0 + B0), b1 + kb1 * (-b1 + B1)
            yy, aa = ny, na
        return yy
else:
    sys.exit(f"unknown cell {cell}")

Wo, bo = P(10, N, scale=1 / N**0.5), torch.zeros(10, device=dev, requires_grad=True)
opt = torch.optim.Adam(params + [Wo, bo], lr=1e-3)


def step():
    loss = F.cross_entropy(run() @ Wo.T + bo, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if dev == "cuda":
        torch.cuda.synchronize()
    return loss.item()


for _ in range(2):
    step()
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    step()
    ts.append(time.perf_counter() - t0)
print(f"torch {torch.__version__} {dev} {cell} N={N} batch={B} T=784: {statistics.median(ts) * 1e3:.1f} ms per training step")
