#!/usr/bin/env bash
# Runs the Python peers and neurodyn's criterion benches on the identical .npy problems, one after
# the other on the same machine: scipy RK45/DOP853 and diffrax Tsit5 on the rate RNN (rnn_ode.py),
# diffrax under vmap on 64-member ensembles (ensemble_diffrax.py), and the work–precision curves
# at rtol 1e-3 … 1e-10 (work_precision.py); then `cargo bench --bench integrate` (rnn_ode,
# ensemble, work_precision). Ratios go to BENCHMARKS.md.
# Needs the peers' venv: ../shared/peers/setup.sh --with-jax
source "$(dirname "$0")/peers/env.sh"
"$VENV/bin/python" "$PEERS/rnn_ode.py" > "$PEERS_DATA/rnn_ode.json"
"$VENV/bin/python" benches/peers/ensemble_diffrax.py > "$PEERS_DATA/ensemble.json"
"$VENV/bin/python" benches/peers/work_precision.py > "$PEERS_DATA/work_precision.json"
"$VENV/bin/python" - "$PEERS_DATA" <<'PY'
import json, sys, os
d = sys.argv[1]
r = json.load(open(os.path.join(d, "rnn_ode.json")))
for c in r["cases"]:
    for k, v in c["solvers"].items():
        print(f"peer N={c['N']} {k}: median {v['median_s']*1e3:.2f} ms, nfev {v['nfev']}, err vs ref {v['max_abs_err_vs_ref']:.2e}")
print("peer ensemble:", open(os.path.join(d, "ensemble.json")).read().strip()[:600])
w = json.load(open(os.path.join(d, "work_precision.json")))
print(f"peer work-precision N={w['N']} t1={w['t1']} (reference uncertainty {w['reference_uncertainty']:.1e}):")
for row in w["rows"]:
    print(f"  {row['solver']:>14} rtol {row['rtol']:.0e}: {row['seconds']*1e3:9.2f} ms, nfev {row['nfev']:6d}, error {row['error']:.2e}")
PY
cargo bench --bench integrate -- "rnn_ode|ensemble|work_precision" 2>&1 | grep -E "N = |time:|^rnn_ode|^ensemble|^work_precision"
