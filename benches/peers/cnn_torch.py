#!/usr/bin/env python3
"""PyTorch peer of neurodyn's `nn` module.

Two modes:

  cnn_torch.py fixture OUT.safetensors
      Builds two small networks in PyTorch with the layer names neurodyn uses — a convolutional
      one with every layer type (conv with stride/padding, ReLU, pooled divisive normalization,
      BatchNorm, max pooling, Ken Miller's normalization, average pooling with padding, linear)
      and the static ORGaNICs network — draws weights and a batch, and saves the weights, the
      batch, the logits, the loss, every parameter gradient (training mode) and the running
      statistics after the pass. tests/suite/nn.rs (mod torch_parity) checks neurodyn against it (f32, 1e-5), so the
      test needs no torch.

  cnn_torch.py bench [--batch 64] [--steps 20] [--threads 2]
      Times the training step (forward + backward + Adam) of small-alexnet with divisive
      normalization on 28 × 28 inputs, and forward alone; prints one JSON line.

The layers follow the formulas in neurodyn's src/nn docs (divisive normalization after Miller,
Shou, Martiniani & Heeger; the static ORGaNICs layer after Rawat, Heeger & Martiniani 2024).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class DivNorm(nn.Module):
    """y_c = exp(γ_k) |x_c|^P / (|σ_k|^P + Σ_{c' in pool k} |x_c'|^P + ε), contiguous pools."""

    def __init__(self, channels, pool, power=2.0, eps=0.0):
        super().__init__()
        self.pool, self.power, self.eps = pool, power, eps
        k = channels // pool
        self.gamma = nn.Parameter(torch.ones(k))
        self.sigma = nn.Parameter(torch.ones(k))

    def forward(self, x):
        b, c, h, w = x.shape
        u = x.abs().pow(self.power)
        k = c // self.pool
        s = u.view(b, k, self.pool, h, w).sum(2, keepdim=True)
        d = self.sigma.abs().pow(self.power).view(1, k, 1, 1, 1) + s + self.eps
        y = torch.exp(self.gamma).view(1, k, 1, 1, 1) * u.view(b, k, self.pool, h, w) / d
        return y.view(b, c, h, w)


class Miller(nn.Module):
    """y_c = x_c² / (k (1 + α/λ Σ_j x_{c+j}² e^{−|j|/λ}))^β over ⌈8λ⌉ (odd) channels."""

    def __init__(self, lamb=10.0, alpha=0.1, beta=1.0, k=10.0):
        super().__init__()
        self.lamb = nn.Parameter(torch.tensor([lamb]))
        self.alpha = nn.Parameter(torch.tensor([alpha]))
        self.beta = nn.Parameter(torch.tensor([beta]))
        self.k = nn.Parameter(torch.tensor([k]))

    def forward(self, x):
        b, c, h, w = x.shape
        n = int(math.ceil(8 * self.lamb.item()))
        if n % 2 == 0:
            n += 1
        half = min(n // 2, c - 1)
        j = torch.arange(-half, half + 1, dtype=x.dtype).abs()
        wts = torch.exp(-j / self.lamb)
        u = (x * x).permute(0, 2, 3, 1).reshape(-1, 1, c)
        s = F.conv1d(u, wts.view(1, 1, -1), padding=half).reshape(b, h, w, c).permute(0, 3, 1, 2)
        m = self.k * (1 + self.alpha * s / self.lamb)
        return x * x / m.pow(self.beta)


class StaticOrganics(nn.Module):
    def __init__(self, d, n, sigma=1.0):
        super().__init__()
        self.sigma = sigma
        self.W_zx = nn.Parameter(torch.empty(n, d).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
        self.W_bx = nn.Parameter(torch.empty(n, d).uniform_(-1 / math.sqrt(d), 1 / math.sqrt(d)))
        self.b0 = nn.Parameter(0.3 * torch.randn(n))
        self.log_W = nn.Parameter(-math.log(n) + 0.3 * torch.randn(n, n))

    def forward(self, x):
        x = x.flatten(1)
        v = x @ self.W_zx.T
        z = v / v.norm(dim=1, keepdim=True)
        b1 = torch.sigmoid(x @ self.W_bx.T)
        b0 = torch.sigmoid(self.b0)
        q = b1 * z
        a = (self.sigma * b0) ** 2 + (q * q) @ torch.exp(self.log_W).T
        y = q / a.sqrt()
        return F.relu(y) ** 2


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=1, padding=1)
        self.divnorm1 = DivNorm(4, 2)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.miller2 = Miller(lamb=0.7, alpha=0.4, beta=0.8, k=1.5)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        x = self.bn1(self.divnorm1(F.relu(self.conv1(x))))     # 4×12×12
        x = F.max_pool2d(x, 3, 2)                               # 4×5×5
        x = self.bn2(self.miller2(F.relu(self.conv2(x))))       # 8×3×3
        x = F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=True)  # 8×2×2
        return self.fc(x.flatten(1))


class OrganicsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.organics = StaticOrganics(144, 16, sigma=0.5)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.organics(x))


def fixture(out):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    x = torch.randn(6, 1, 12, 12)
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    tensors = {"input": x, "labels": labels.to(torch.float32)}
    for tag, net in [("conv", ConvNet()), ("organics", OrganicsNet())]:
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith(("gamma", "sigma")):
                    p.add_(0.3 * torch.randn_like(p))
        for name, p in net.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                tensors[f"{tag}/{name}"] = p.detach().clone()
        net.train()
        logits = net(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        tensors[f"{tag}.logits"] = logits.detach()
        tensors[f"{tag}.loss"] = loss.detach().reshape(1)
        for name, p in net.named_parameters():
            tensors[f"{tag}.grad/{name}"] = p.grad.detach().clone()
        for name, b in net.named_buffers():
            if "running" in name:
                tensors[f"{tag}.after/{name}"] = b.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, out)
    print(json.dumps({"wrote": out, "tensors": len(tensors)}))


class SmallAlexnet(nn.Module):
    """neurodyn's small-alexnet with --norm divnorm (src/nn/arch.rs)."""

    def __init__(self, relu=True):
        super().__init__()
        self.relu = relu
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.divnorm1 = DivNorm(32, 4)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.divnorm2 = DivNorm(64, 8)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.divnorm3 = DivNorm(64, 8)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(256, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.5)

    def block(self, x, conv, dn, bn):
        x = conv(x)
        if self.relu:
            x = F.relu(x)
        return F.max_pool2d(bn(dn(x)), 3, 2)

    def forward(self, x):
        x = self.block(x, self.conv1, self.divnorm1, self.bn1)
        x = self.block(x, self.conv2, self.divnorm2, self.bn2)
        x = self.block(x, self.conv3, self.divnorm3, self.bn3)
        x = self.fc1(self.drop(x.flatten(1)))
        return self.fc2(self.drop(F.relu(x)))


def bench(batch, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = SmallAlexnet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    net.train()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            net(x)
    fwd = (time.perf_counter() - t0) / steps
    print(json.dumps({"peer": "torch", "threads": threads, "batch": batch,
                      "train_step_s": step, "forward_s": fwd, "torch": torch.__version__}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "fixture":
        fixture(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "bench":
        args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
        bench(int(args.get("--batch", 64)), int(args.get("--steps", 20)), int(args.get("--threads", 2)))
    else:
        sys.exit(__doc__)
