#!/usr/bin/env bash
# GPU check: the one script to run when a GPU is lent; at most 8 minutes on one H200 (the
# rows take about 5; --budget stops starting new ones after 400 s).
# It prints one table (benchmarks/gpu_check.py lists the rows): every method's golden run on
# the GPU vs its CPU losses (float64), loss fused vs dense (time,
# peak memory), small-cnn training images/s compiled vs eager, ResNet-50 at 224 px bf16 (full
# step vs model alone), ViT-S/16 (timm) vs ResNet-50 at 224 px bf16, evaluation features +
# kNN and K-means re-clustering on the GPU vs the CPU, and the input paths from JPEGs. Without a CUDA device it runs every row at tiny sizes
# on the CPU (under a minute): a check of the flow, not of the speed.
#   bash benchmarks/gpu_check.sh [python] [gpu_check.py options, e.g. --only loss,kmeans]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
shift || true
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
    timeout 470 "$PY" benchmarks/gpu_check.py --budget 400 "$@"
else
    echo "no CUDA device: CPU smoke run at tiny sizes (checks the flow, not the speed)"
    OMP_NUM_THREADS=1 timeout 120 "$PY" benchmarks/gpu_check.py --cpu-smoke "$@"
fi
