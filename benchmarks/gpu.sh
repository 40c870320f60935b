#!/usr/bin/env bash
# On a lent GPU (≤ 5 minutes): the CUDA tests (no host syncs in the hot loops, bf16, the solver), then training,
# sampling and solver throughput with the solver's share of the memory bandwidth (benchmarks/gpu.py).
#   bash benchmarks/gpu.sh            # from the repository root, with the project installed (pip install -e .)
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to measure')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 120 python -m pytest -q tests/engine/test_gpu.py tests/engine/test_distributed.py -p no:cacheprovider
timeout 240 python benchmarks/gpu.py --device cuda --repeats 5 --compile
