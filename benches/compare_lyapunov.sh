#!/usr/bin/env bash
# Runs the Python peer (numpy, torch CPU) and neurodyn's Lyapunov bench on the identical .npy
# problems, one after the other. Needs: ../shared/peers/setup.sh --with-torch
source "$(dirname "$0")/peers/env.sh"
# The peers on one thread and on two (numpy's BLAS and torch each get the count): at N = 100 one
# thread is ~2x faster (two libraries' thread pools in one process contend), at N = 500 two are.
for T in 1 2; do
  OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T MKL_NUM_THREADS=$T TORCH_THREADS=$T \
    "$VENV/bin/python" "$PEERS/lyap.py" > "$PEERS_DATA/lyap_threads$T.json"
  "$VENV/bin/python" - "$PEERS_DATA/lyap_threads$T.json" "$T" <<'PY'
import json, sys
r, t = json.load(open(sys.argv[1])), sys.argv[2]
for e in r["map"]:
    for b in ("numpy", "torch"):
        if b in e:
            print(f"peer map N={e['N']} g={e['g']} {b} threads={t}: {e[b]['s_per_step']*1e3:.3f} ms/step, sum {e[b]['sum']:.6f}, short-check sum {e[b]['short_check_warm0_T50']['sum']:.12f}")
for e in r["flow"]:
    for b in ("numpy", "torch"):
        if b in e:
            print(f"peer flow N={e['N']} {b} threads={t}: {e[b]['s_per_step']*1e3:.3f} ms/step, sum {e[b]['sum']:.6f} (mean tr {e[b]['sum_check_mean_trace_DF']:.6f})")
PY
done
LYAP_SCALING=${LYAP_SCALING:-1} cargo bench --bench lyapunov 2>&1 | grep -E "short check|time:|^lyap_|scaling|^ +[0-9]+ +[0-9]+ "
