"""Strips a `train --cell rate` checkpoint to what the analyses need (the network's own tensors and
configuration, float32), for committing small trained networks under models/.

Usage: python scripts/strip_checkpoint.py IN.safetensors OUT.safetensors  (numpy only)"""
import json, struct, sys
import numpy as np

KEEP = ("W_raw", "W_in", "gamma", "dale", "W_out", "b_out")
META = ("format", "cell", "phi", "tau_min", "tau_max", "learn_tau", "fixed_input", "noise")

src, dst = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
out_h, blobs, off = {}, [], 0
for k in sorted(KEEP):
    v = h[k]
    s, e = v["data_offsets"]
    a = np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F64": np.float64, "F32": np.float32}[v["dtype"]])
    raw = a.astype("<f4").tobytes()
    out_h[k] = {"dtype": "F32", "shape": v["shape"], "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
out_h["__metadata__"] = {k: h["__metadata__"][k] for k in META if k in h["__metadata__"]}
head = json.dumps(out_h, separators=(",", ":")).encode()
head += b" " * ((8 - len(head) % 8) % 8)
open(dst, "wb").write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
