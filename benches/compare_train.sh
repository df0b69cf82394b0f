#!/usr/bin/env bash
# PyTorch (CPU, 2 threads) and neurodyn training steps of the same Dale rate RNN on Go/NoGo, one
# after the other. Needs: ../shared/peers/setup.sh --with-torch
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PEERS_VENV:-$HOME/.cache/neurodyn-peers/venv}
for n in 40 128; do "$VENV/bin/python" benches/peers/train_rate.py "$n" 16; done
cargo bench --bench train 2>&1 | grep -E "time:|^train_step"
