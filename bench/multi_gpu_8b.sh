#!/usr/bin/env bash
# Only the internvl3-8b rows of bench/multi_gpu.sh (steps 3 and 4):  bash bench/multi_gpu_8b.sh OUT_DIR [N_GPUS]
ONLY_8B=1 exec bash "$(dirname "$0")/multi_gpu.sh" "$@"
