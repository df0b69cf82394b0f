#!/usr/bin/env bash
# The one-call GPU check for a lent machine with an NVIDIA GPU (no Rust toolchain, no network):
# run from the repository root of a copy of the working tree that carries
#   target/gpu-check/gpu-check   (the stripped binary: ./scripts/gpu_check.sh --build, here)
#   .gl/                         (the Vulkan loader's .deb files, if the machine has no libvulkan;
#                                 see the device tool's notes)
# It unpacks the loader when needed, points Vulkan at the NVIDIA driver, runs `gpu-check --size
# paper` (every GPU path against the CPU reference, timed against the machine's CPU) and, where
# PyTorch with CUDA is installed, the PyTorch CUDA training step of benches/peers/train_seq.py on
# the same shape (64 units, batch 256, 784 steps; ms per step in torch_cuda.txt); the tables go to $OUT (or ./gpu-check-out). Budget: well under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--build" ]; then
  cargo build --release --bin gpu-check && mkdir -p target/gpu-check &&
    cp target/release/gpu-check target/gpu-check/ && strip target/gpu-check/gpu-check &&
    ls -l target/gpu-check/gpu-check
  exit $?
fi
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
if ! ldconfig -p | grep -q libvulkan && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$ICD" ] && export VK_DRIVER_FILES="$ICD"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
BIN=${GPU_CHECK_BIN:-target/gpu-check/gpu-check}
[ -x "$BIN" ] || BIN=target/release/gpu-check
nvidia-smi -L > "$OUT/device.txt" 2>&1 || true
timeout 420 "$BIN" --size "${GPU_CHECK_SIZE:-paper}" --out "$OUT/gpu_check.csv" 2>&1 | tee "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  for cell in rate gamma organics; do
    echo "$cell $(timeout 90 python3 benches/peers/train_seq.py "$cell" 64 256 cuda 2>>"$OUT/torch_cuda.log")" \
      >> "$OUT/torch_cuda.txt"
  done
fi
exit "$rc"
