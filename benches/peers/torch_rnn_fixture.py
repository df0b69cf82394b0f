"""Writes tests/fixtures/torch_{rnn,gru,lstm}.safetensors (single-layer nn.RNN / nn.GRU / nn.LSTM
state dicts, float64, N = 8 hidden units, K = 3 inputs, seeded) and torch_{...}_traj.npy: the
state from a seeded initial state over 6 steps of zero input, computed by torch's own forward
pass ([h] for RNN/GRU, [h, c] for the LSTM, one row per step, the initial state first).

    ~/.cache/neurodyn-peers/venv/bin/python benches/peers/torch_rnn_fixture.py
"""
import numpy as np
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
N, K, T = 8, 3, 6
out = "tests/fixtures"
for name, layer, meta in [
    ("rnn", torch.nn.RNN(K, N, nonlinearity="tanh"), {"nonlinearity": "tanh"}),
    ("gru", torch.nn.GRU(K, N), {}),
    ("lstm", torch.nn.LSTM(K, N), {}),
]:
    layer = layer.double()
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(3.0)  # larger weights: the nonlinearities are exercised
    sd = {k: v.contiguous() for k, v in layer.state_dict().items()}
    save_file(sd, f"{out}/torch_{name}.safetensors", metadata=meta)
    x = torch.zeros(1, 1, K, dtype=torch.float64)
    h = torch.randn(1, 1, N, dtype=torch.float64)
    rows = []
    if name == "lstm":
        c = torch.randn(1, 1, N, dtype=torch.float64)
        state = (h, c)
        rows.append(torch.cat([h, c], -1).flatten().numpy())
        for _ in range(T):
            _, state = layer(x, state)
            rows.append(torch.cat(state, -1).flatten().detach().numpy())
    else:
        rows.append(h.flatten().numpy())
        for _ in range(T):
            _, h = layer(x, h)
            rows.append(h.flatten().detach().numpy())
    np.save(f"{out}/torch_{name}_traj.npy", np.array(rows))
    print(name, np.array(rows).shape)
