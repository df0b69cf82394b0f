#!/usr/bin/env bash
# Runs the Python peer (differint.GL, numpy O(N^2) loop, zero-padded scipy FFT) and neurodyn's
# fracdiff bench on the same problem (GL D^0.5 of t^2 on linspace(0, 1, N)), one after the other.
# The peer script stops at N = 1e5; its own gl_fft is also timed at N = 1e6 here.
source "$(dirname "$0")/peers/env.sh"
OUT=$PEERS_DATA
"$VENV/bin/python" "$PEERS/fracdiff.py" > "$OUT/fracdiff.json"
"$VENV/bin/python" - "$OUT/fracdiff.json" "$PEERS" <<'PY'
import json, sys, time, statistics
sys.path.insert(0, sys.argv[2])
import numpy as np
from fracdiff import gl_fft
r = json.load(open(sys.argv[1]))
for c in r["cases"]:
    for k, v in c["methods"].items():
        print(f"peer N={c['N']} {k}: median {v['median_s']*1e3:.3f} ms, err(t=1) {v['abs_err_at_t1']}, max err {v['max_abs_err']:.3e}")
N = 1_000_000; h = 1.0 / (N - 1); f = np.linspace(0, 1, N) ** 2
gl_fft(0.5, f, h); ts = []
for _ in range(5):
    t = time.perf_counter(); gl_fft(0.5, f, h); ts.append(time.perf_counter() - t)
print(f"peer N={N} fft_O(NlogN) (peer's gl_fft): median {statistics.median(ts)*1e3:.3f} ms")
PY
cargo bench --bench fracdiff 2>&1 | grep -E "^N = |time:|^fracdiff_gl"
