#!/usr/bin/env bash
# Run scripts/cimat.sh for several configs at once, PER_GPU runs on each GPU (default 1), and pack what each run
# produced (report, evaluations, logs, checkpoint metadata; no weights) into RESULTS/NAME.tar.gz.
#   bash scripts/gpu_sweep.sh RESULTS CONFIG [CONFIG ...]        (at most PER_GPU configs per visible GPU; paths from the repo root)
# Runs sharing a GPU compete for it: compare them at equal iterations (max_iters), not at equal time.
set -uo pipefail
cd "$(dirname "$0")/.."
RES=${1:?usage: scripts/gpu_sweep.sh RESULTS CONFIG...}; shift; mkdir -p "$RES"
n=$(python -c "import torch; print(torch.cuda.device_count())"); per=${PER_GPU:-1}
[ "$#" -le $((n * per)) ] || { echo "$# configs but $n GPUs for $per run(s) each (PER_GPU)" >&2; exit 2; }
PREPARE_ONLY=1 bash scripts/cimat.sh || exit $?    # import and split once, before the parallel runs
i=0; pids=()
for c in "$@"; do
  name=$(basename "$c" .yaml)
  CUDA_VISIBLE_DEVICES=$((i / per)) OUT=runs/cimat/$name bash scripts/cimat.sh "$c" > "$RES/$name.log" 2>&1 & pids+=($!)
  i=$((i + 1))
done
rcs=(); for p in "${pids[@]}"; do wait "$p"; rcs+=($?); done
i=0; fail=0
for c in "$@"; do
  name=$(basename "$c" .yaml); d=runs/cimat/$name; mkdir -p "$d"
  grep -v "it/s" "$RES/$name.log" > "$d/pipeline.log" && rm "$RES/$name.log"
  tar czf "$RES/$name.tar.gz" --exclude='*.safetensors' --exclude='*.pt' --exclude='export' "$d"
  echo "== $name: exit ${rcs[$i]}"; grep -E "^  dice|^test:|^val:|best|time-limit|finished|stopped|Error|error" "$d/pipeline.log" | tail -12
  [ "${rcs[$i]}" = 0 ] || fail=1; i=$((i + 1))
done
exit $fail
