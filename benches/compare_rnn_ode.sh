#!/usr/bin/env bash
# Runs the Python peer (scipy RK45/DOP853, diffrax Tsit5) and neurodyn's criterion bench on the
# identical .npy problem, one after the other on the same machine. Ratios go to BENCHMARKS.md.
# Needs the peers' venv: ../shared/peers/setup.sh --with-jax
source "$(dirname "$0")/peers/env.sh"
"$VENV/bin/python" "$PEERS/rnn_ode.py" > "$PEERS_DATA/rnn_ode.json"
"$VENV/bin/python" - "$PEERS_DATA/rnn_ode.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["cases"]:
    for k, v in c["solvers"].items():
        print(f"peer N={c['N']} {k}: median {v['median_s']*1e3:.2f} ms, nfev {v['nfev']}, err vs ref {v['max_abs_err_vs_ref']:.2e}")
PY
cargo bench --bench integrate -- rnn_ode 2>&1 | grep -E "N = |time:|^rnn_ode"
