#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
NVCC="${NVCC:-/usr/local/cuda/bin/nvcc}"
"$NVCC" -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -lineinfo -Xptxas -v proto.cu -o proto -lcublas
