#!/usr/bin/env bash
# PyTorch (CPU, 2 threads) and neurodyn training steps of the same cells, one after the other:
#  - the Dale rate RNN on Go/NoGo (float64, N = 40, 128, batch 16);
#  - sequential digits, 784 steps, float32, batch 32, hidden 64 / 128: rate, gamma, ORGaNICs cells.
# The wgpu trainer (rate, gamma, ORGaNICs) is added with NEURODYN_BENCH_GPU=1 (lavapipe without a GPU; slow).
# Needs: ../shared/peers/setup.sh --with-torch
source "$(dirname "$0")/peers/env.sh"
for n in 40 128; do "$VENV/bin/python" benches/peers/train_rate.py "$n" 16; done
for c in rate gamma organics; do
  for n in 64 128; do "$VENV/bin/python" benches/peers/train_seq.py "$c" "$n" 32; done
done
NEURODYN_BENCH_ALL=1 cargo bench --bench train 2>&1 | grep -E "time:|^train_step|adapter"
