#!/usr/bin/env bash
# Runs the Python peer (numpy, torch CPU) and neurodyn's Lyapunov bench on the identical .npy
# problems, one after the other. Needs: ../shared/peers/setup.sh --with-torch
source "$(dirname "$0")/peers/env.sh"
"$VENV/bin/python" "$PEERS/lyap.py" > "$PEERS_DATA/lyap.json"
"$VENV/bin/python" - "$PEERS_DATA/lyap.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for e in r["map"]:
    for b in ("numpy", "torch"):
        if b in e:
            print(f"peer map N={e['N']} g={e['g']} {b}: {e[b]['s_per_step']*1e3:.3f} ms/step, sum {e[b]['sum']:.6f}, short-check sum {e[b]['short_check_warm0_T50']['sum']:.12f}")
for e in r["flow"]:
    for b in ("numpy", "torch"):
        if b in e:
            print(f"peer flow N={e['N']} {b}: {e[b]['s_per_step']*1e3:.3f} ms/step, sum {e[b]['sum']:.6f} (mean tr {e[b]['sum_check_mean_trace_DF']:.6f})")
PY
LYAP_SCALING=${LYAP_SCALING:-1} cargo bench --bench lyapunov 2>&1 | grep -E "short check|time:|^lyap_|scaling|^ +[0-9]+ +[0-9]+ "
