#!/usr/bin/env python3
"""Writes tests/fixtures/torch_gamma.safetensors: a gamma RNN (Geadah et al. (2024), per-neuron n, s)
built in PyTorch and saved with safetensors.torch.save_file under neurodyn's tensor names, plus the
logits PyTorch computes for a fixed input sequence (torch_gamma_logits.npy, input torch_gamma_u.npy).
tests/suite/train.rs loads the file and checks neurodyn's forward pass against PyTorch's logits.
Usage: python export_torch_gamma.py   (needs torch, numpy, safetensors)
"""
import os
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(3)
N, K, C, T, B = 6, 1, 4, 12, 3
U = torch.randn(N, K) * 0.8
V = torch.randn(N, N) / N**0.5
b = torch.randn(N) * 0.1
n = 2.0 + torch.rand(N) * 3.0
s = torch.rand(N) * 0.6
W_out = torch.randn(C, N) * 0.5
b_out = torch.randn(C) * 0.1
u = torch.rand(T, B, K)  # [t][b][k], the layout of neurodyn's Batch
h = torch.zeros(B, N)
for t in range(T):
    a = u[t] @ U.T + h @ V.T + b
    h = (1 - s) * F.softplus(n * a, threshold=1e9) / n + s * torch.sigmoid(n * a)
logits = h @ W_out.T + b_out
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
save_file({"U": U, "V": V, "b": b, "n": n, "s": s, "W_out": W_out, "b_out": b_out},
          os.path.join(out, "torch_gamma.safetensors"))
np.save(os.path.join(out, "torch_gamma_u.npy"), u.numpy().astype(np.float64))
np.save(os.path.join(out, "torch_gamma_logits.npy"), logits.numpy().astype(np.float64))
print("wrote", out)
