#!/usr/bin/env bash
# GPU check (issues 7 and 16), about 8-9 minutes on one H100: Cl-InfoNCE loss throughput and
# peak memory against the dense SupCon pattern, then ResNet-50 training images/s at 224 px
# with bf16 autocast and channels-last (full Lightning step against the model alone), then
# the input pipeline from 500x375 JPEGs (previous file path, prepared array, streamed with
# 1-2 workers, nvJPEG decode on the GPU) beside the model-only rate and one training epoch
# per path, and (issue 25) one table of training images/s of ResNet-50 and ViT-S/16
# (timm) at 224 px in bf16, ImageNet weights when cached (the rate does not depend on them).
#   bash benchmarks/gpu_check.sh [python]        # python defaults to .venv/bin/python
# The python needs the dev extras (timm for the ViT row).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(), torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
timeout 150 "$PY" benchmarks/bench_loss.py --device cuda --sizes 4096,8192,12288 --repeats 5
timeout 200 "$PY" benchmarks/bench_train.py --device cuda --encoder resnet50 --image-size 224 \
    --batch 128 --precision bf16-mixed --steps 10 --rounds 2
timeout 330 "$PY" benchmarks/bench_input.py --device cuda --images 4000 --sizes 224 \
    --encoders resnet50 --batch 256 --precision bf16-mixed
timeout 150 "$PY" benchmarks/bench_input.py --device cuda --images 4000 --sizes 64 \
    --encoders small-cnn,resnet18 --batch 256 --precision bf16-mixed --no-epochs
timeout 150 "$PY" benchmarks/bench_backbones.py --device cuda --size 224 --batch 128 \
    --encoders resnet50,timm:vit_small_patch16_224 --steps 10 --rounds 2
