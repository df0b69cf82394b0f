#!/usr/bin/env bash
# PyTorch CPU (2 threads) and neurodyn on the same network in one run: small-alexnet with divisive
# normalization (conv → ReLU → divnorm → BatchNorm blocks, dropout, two linear layers), batch 64 of
# 28 × 28 images, float32; one training step (forward, backward, Adam) and one forward pass.
# Alternates the two twice so that machine noise hits both. Needs: ../shared/peers/setup.sh --with-torch
source "$(dirname "$0")/peers/env.sh"
cargo bench --bench nn --no-run 2>/dev/null
for round in 1 2; do
  "$VENV/bin/python" benches/peers/cnn_torch.py bench --batch 64 --steps 20 --threads 2
  cargo bench --bench nn -- --noplot 2>&1 | grep -E "^layer|^[a-z_0-9]+ +[0-9]|^total|^cnn/|time:"
done
