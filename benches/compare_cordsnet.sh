#!/usr/bin/env bash
# The seed's spectrum method in PyTorch CPU (Arnoldi + MGS on the conv operator, unshifted QR
# sweeps of H, eig) against `cordsnet spectrum` (Arnoldi + MGS, faer's Hessenberg/Schur eigen
# solver and Ritz residuals) on the same kernels, in one run: a random 10-channel 10 × 10 layer
# (N = 1,000, m = 300), an R8 layer-7-sized operator (512 × 7 × 7 = 25,088 units) and a
# layer-0-sized one (64 × 56 × 56 = 200,704 units), m = 60 for the two large ones.
# Needs: ../shared/peers/setup.sh --with-torch
source "$(dirname "$0")/peers/env.sh"
D=$PEERS_DATA
cargo build --release --bin cordsnet 2>/dev/null
"$VENV/bin/python" - "$D" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
for name, c in [("k10", 10), ("k512", 512), ("k64", 64)]:
    np.save(f"{d}/{name}.npy", rng.uniform(-1, 1, (c, c, 3, 3)) / (3 * np.sqrt(c)))
PY
for spec in "k10 10 10 300" "k512 7 7 60" "k64 56 56 60"; do
  set -- $spec
  for qr in 100 5000; do
    [ "$1" != k10 ] && [ $qr = 5000 ] && continue
    "$VENV/bin/python" benches/peers/cordsnet_arnoldi.py "$D/$1.npy" $2 $3 $4 $qr 2
  done
  /usr/bin/time -f "neurodyn cordsnet spectrum $1: %e s wall, %M kB max RSS" \
    target/release/cordsnet spectrum --kernel "$D/$1.npy" --size $2 $3 --m $4 --k 20 --out "$D/ritz_$1.csv"
done
