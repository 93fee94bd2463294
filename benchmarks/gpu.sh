#!/usr/bin/env bash
# GPU benchmarks, prepared to run in under 5 minutes on one GPU:
#   epoch time per network vs the naive loop (float32 and --amp),
#   trials per hour with 1, 2 and 4 workers sharing the GPU.
# Usage: bash benchmarks/gpu.sh   (from the repository root, after the README's install)
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible"
print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
timeout 150 python benchmarks/epoch_speed.py --device cuda --epochs 5 --rounds 2
timeout 130 python benchmarks/throughput.py --device auto --epochs 10 --trials 8 \
    --workers 1 2 4 --short-trials 0 --amp
