#!/usr/bin/env bash
# Runs the Python peer (scipy root(hybr) + numpy eigvals, N = 200) and neurodyn's fixed-point bench
# on the same .npy problem, plus numpy eigvals on the same N = 1000 matrix, one after the other.
source "$(dirname "$0")/peers/env.sh"
"$VENV/bin/python" "$PEERS/fixedpoint.py" > "$PEERS_DATA/fixedpoint.json"
"$VENV/bin/python" - "$PEERS_DATA" <<'PY'
import json, sys, time, statistics, os
import numpy as np
d = sys.argv[1]
r = json.load(open(os.path.join(d, "fixedpoint.json")))
print("peer:", json.dumps({k: v for k, v in r.items() if k not in ("files",)})[:1500])
A = np.random.default_rng(1).standard_normal((1000, 1000)) / np.sqrt(1000)
np.save(os.path.join(d, "eig_N1000.npy"), A)
np.linalg.eigvals(A); ts = []
for _ in range(5):
    t = time.perf_counter(); np.linalg.eigvals(A); ts.append(time.perf_counter() - t)
print(f"peer numpy eigvals N=1000: median {statistics.median(ts)*1e3:.1f} ms")
PY
SWEEP_SCALING=${SWEEP_SCALING:-1} cargo bench --bench fixed_points 2>&1 | grep -E "root|time:|^fixed_points|sweep N"
