#!/usr/bin/env bash
# Peak memory (maximum resident set size, GNU time) and wall time of whole processes, each
# BENCHMARKS.md row's peer script against neurodyn's binary on the row's largest problem, one
# run. A peer's figure is its whole script (interpreter, imports and every case it times, the
# largest included); neurodyn's is one process on the largest case. Run the row's compare_*.sh
# once first (it writes the shared .npy problems into target/peers-data).
# Needs: ../shared/peers/setup.sh --with-torch --with-pycont --with-jax
source "$(dirname "$0")/peers/env.sh"
D=$PEERS_DATA
B=target/release
cargo build --release --bin simulate --bin fixed-points --bin lyapunov --bin continuation \
  --bin cordsnet --bin fracdiff 2>/dev/null
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
measure() { # row, who, command...
  local row=$1 who=$2; shift 2
  if /usr/bin/time -f "%e %M" -o "$T/time" "$@" > "$T/out" 2>&1; then
    read -r s kb < "$T/time"
    printf '| %s | %s | %.2f s | %d MB |\n' "$row" "$who" "$s" $((kb / 1024))
  else
    printf '| %s | %s | failed | — |\n' "$row" "$who"
  fi
}
"$VENV/bin/python" - "$D" <<'PY'
import sys, numpy as np
d = sys.argv[1]
N = 100_000
np.save(f"{d}/mem_t2_1e5.npy", np.linspace(0, 1, N) ** 2)
PY
echo "| row | process | wall | peak RSS |"
echo "|---|---|---|---|"
measure "P1 rate RNN ODE, N = 500" "peer rnn_ode.py (scipy, diffrax; N = 100, 500)" "$VENV/bin/python" "$PEERS/rnn_ode.py"
measure "P1 rate RNN ODE, N = 500" "neurodyn simulate (Tsit5, rtol 1e-6, t ≤ 50)" $B/simulate \
  --W "$D/rnn_N500_g1.5_W.npy" --b "$D/rnn_N500_g1.5_b.npy" --x0 "$D/rnn_N500_g1.5_x0.npy" \
  --activation tanh --method tsit5 --rtol 1e-6 --atol 1e-9 --t1 50 --samples 11 --out "$T/sim.parquet"
measure "P2 Newton root, N = 200" "peer fixedpoint.py (scipy hybr, eigvals)" "$VENV/bin/python" "$PEERS/fixedpoint.py"
measure "P2 Newton root, N = 200" "neurodyn fixed-points (16 starts, spectra)" $B/fixed-points \
  --W "$D/rnn_N200_g0.8_W.npy" --b "$D/rnn_N200_g0.8_b.npy" --activation tanh --starts 16 --seed 0 \
  --out "$T/fp.csv"
measure "P3 Lyapunov map, N = 500" "peer lyap.py --no-flow (numpy, torch; N = 100, 500; 3 gains)" \
  "$VENV/bin/python" "$PEERS/lyap.py" --no-flow
measure "P3 Lyapunov map, N = 500" "neurodyn lyapunov (full, g = 3, 100 steps, auto)" $B/lyapunov \
  --map tanh --W "$D/rnn_N500_g3.0_W.npy" --x0 "$D/rnn_N500_g3.0_x0.npy" --steps 100 --reorth auto \
  --out "$T/ly.csv"
measure "P4 GL D^0.5, N = 1e5" "peer fracdiff.py (differint, numpy FFT; N ≤ 1e5)" "$VENV/bin/python" "$PEERS/fracdiff.py"
measure "P4 GL D^0.5, N = 1e5" "neurodyn fracdiff (gl, FFT)" $B/fracdiff --input "$D/mem_t2_1e5.npy" \
  --alpha 0.5 --dt 1.0101e-5 --method gl --out "$T/fd.npy" --quiet
measure "P10 Arnoldi m = 300, N = 1,000" "peer cordsnet_arnoldi.py (torch, 100 QR sweeps)" \
  "$VENV/bin/python" benches/peers/cordsnet_arnoldi.py "$D/k10.npy" 10 10 300 100 2
measure "P10 Arnoldi m = 300, N = 1,000" "neurodyn cordsnet spectrum" $B/cordsnet spectrum \
  --kernel "$D/k10.npy" --size 10 10 --m 300 --k 20 --out "$T/ritz.csv"
measure "continuation, N = 500" "peer continuation.py (pycont-lite; N = 100, 500)" "$VENV/bin/python" \
  benches/peers/continuation.py
measure "continuation, N = 500" "neurodyn continuation (auto)" $B/continuation \
  --W "$D/rnn_N500_g0.5_W.npy" --b "$D/rnn_N500_g0.5_b.npy" --x0 "$D/cont_N500_x0.npy" \
  --activation tanh --param g --from 1 --to 1000 --max-points 201 --ds 0.02 --ds-max 0.02 --quiet \
  --out "$T/c"
