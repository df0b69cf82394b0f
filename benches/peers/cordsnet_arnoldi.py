#!/usr/bin/env python3
"""PyTorch peer of `cordsnet spectrum`: the seed's method (Soo et al. 2024, analysis/
compute_eigenvalues.py, rewritten here from its description): m Arnoldi steps with modified
Gram–Schmidt on v ↦ K ⊛ v (torch conv2d, stride 1, zero padding) from a normalised uniform-random
start, then `qr_iters` unshifted QR sweeps of H_m (the seed runs 5000; its README says 100) and a
dense eigen-solver. Prints one JSON line: Arnoldi time, QR time, eig time, |λ_max|.

usage: cordsnet_arnoldi.py KERNEL.npy H W [m] [qr_iters] [threads]
"""
import json
import sys
import time

import numpy as np
import torch


def main():
    k = torch.from_numpy(np.load(sys.argv[1])).double()
    h, w = int(sys.argv[2]), int(sys.argv[3])
    m = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    qr_iters = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 2)
    c = k.shape[0]
    n = c * h * w
    pad = k.shape[-1] // 2

    def op(v):
        return torch.nn.functional.conv2d(v.view(1, c, h, w), k, padding=pad).reshape(-1)

    torch.manual_seed(0)
    t0 = time.perf_counter()
    q = torch.zeros(n, m + 1, dtype=torch.float64)
    hm = torch.zeros(m + 1, m, dtype=torch.float64)
    v = torch.rand(n, dtype=torch.float64)
    q[:, 0] = v / v.norm()
    for j in range(m):
        wv = op(q[:, j])
        for i in range(j + 1):
            hm[i, j] = torch.dot(wv, q[:, i])
            wv = wv - hm[i, j] * q[:, i]
        hm[j + 1, j] = wv.norm()
        if hm[j + 1, j] < 1e-14:
            break
        q[:, j + 1] = wv / hm[j + 1, j]
    t_arnoldi = time.perf_counter() - t0
    a = hm[:m, :m].clone()
    t0 = time.perf_counter()
    for _ in range(qr_iters):
        qq, rr = torch.linalg.qr(a)
        a = rr @ qq
    t_qr = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = torch.linalg.eigvals(a)
    t_eig = time.perf_counter() - t0
    print(json.dumps({"peer": "torch", "n": n, "m": m, "qr_iters": qr_iters,
                      "arnoldi_s": t_arnoldi, "qr_s": t_qr, "eig_s": t_eig,
                      "total_s": t_arnoldi + t_qr + t_eig, "abs_lambda_max": float(ev.abs().max())}))


if __name__ == "__main__":
    main()
