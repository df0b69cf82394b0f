#!/usr/bin/env python3
"""Convert a PyTorch CordsNet state dict (e.g. the original `cordsnetr8.pth`) to safetensors with
the same key names, which `cordsnet --weights FILE` reads (weight-normed `….parametrizations.weight
.original0/1` pairs are normalised on load; spec A.5 of Soo et al. 2024's layout).

usage: convert_cordsnet.py IN.pth OUT.safetensors      (needs torch and safetensors)
"""
import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sd = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v) or k.endswith("num_batches_tracked"):
            continue
        out[k.removeprefix("module.")] = v.detach().contiguous()
    save_file(out, sys.argv[2])
    n = sum(v.numel() for v in out.values())
    print(f"wrote {len(out)} tensors, {n:,} values to {sys.argv[2]}")


if __name__ == "__main__":
    main()
