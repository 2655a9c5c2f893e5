#!/usr/bin/env bash
# GPU check (issue 7), about 3-4 minutes on one H100: Cl-InfoNCE loss throughput and peak
# memory against the dense SupCon pattern, then ResNet-50 training images/s at 224 px with
# bf16 autocast and channels-last (full Lightning step against the model alone).
#   bash benchmarks/gpu_check.sh [python]        # python defaults to .venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(), torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
timeout 150 "$PY" benchmarks/bench_loss.py --device cuda --sizes 4096,8192,12288 --repeats 5
timeout 200 "$PY" benchmarks/bench_train.py --device cuda --encoder resnet50 --image-size 224 \
    --batch 128 --precision bf16-mixed --steps 10 --rounds 2
