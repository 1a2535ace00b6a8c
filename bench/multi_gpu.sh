#!/usr/bin/env bash
# The multi-GPU measurements of issues 4 and 8 in one run (one device call of at most 10 minutes).
#   bash bench/multi_gpu.sh OUT_DIR [N_GPUS]
# 1. `bench/train_shards.py` on N processes (tiny preset, 2 epochs): disjoint shards that cover every sample.
# 2. `accelerate launch -m vessel_nb.train` on N processes, stopped at iteration 100 and resumed to 200.
# 3. internvl3-8b (random weights), DDP at batch 8 per GPU on 1 and on N GPUs: the scaling ratio.
# 4. internvl3-8b with FSDP2 + activation checkpointing at batch 4 (and 8) per GPU on N GPUs: peak memory per GPU.
# Each step has its own time limit, so one failure does not cost the others; logs go to OUT_DIR.
set -u
OUT=${1:?usage: bench/multi_gpu.sh OUT_DIR [N_GPUS]}; N=${2:-4}; mkdir -p "$OUT"
L="accelerate launch --num_processes $N --mixed_precision bf16"
step() { local name=$1 limit=$2; shift 2; echo "== $name: $*"; local t=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v "it/s" >"$OUT/$name.log"; echo "   rc ${PIPESTATUS[0]} in $((SECONDS - t)) s"; tail -n 8 "$OUT/$name.log"; }
nvidia-smi -L; python -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
if [ -z "${ONLY_8B:-}" ]; then
step shards 150 $L bench/train_shards.py --data data/sample --epochs 2 --work-dir /tmp/vnb_shards
step train_stop 150 $L -m vessel_nb.train --data data/sample --work-dir /tmp/vnb_x --max-iters 200 --stop-at 100 --save-every 50
step train_resume 150 $L -m vessel_nb.train --data data/sample --work-dir /tmp/vnb_x --max-iters 200 --save-every 50 --resume
tail -n 3 /tmp/vnb_x/train_log.jsonl > "$OUT/train_log_tail.jsonl" 2>/dev/null; ls /tmp/vnb_x > "$OUT/train_ls.txt" 2>&1
fi
B="bench/train_gpu.py --preset internvl3-8b --random-weights --steps 10"
step ddp1 150 python $B --batch-size 8 --json "$OUT/ddp1.json"
step ddpN 180 $L $B --batch-size 8 --json "$OUT/ddpN.json"
step fsdpN 200 $L $B --fsdp --gradient-checkpointing --batch-size 4 8 --json "$OUT/fsdpN.json"
