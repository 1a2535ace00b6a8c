#!/usr/bin/env bash
# The main job on the embedded sample data: check → train → pick the best checkpoint on validation → export →
# evaluate on the held-out test videos (model and Frangi baseline) → report (notebook + self-contained HTML).
# Expects the venv to be active (`make main` does that). Everything goes to $OUT (default runs/main), replaced each run.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONWARNINGS=ignore   # Agg: no display needed; the report embeds its figures itself
DATA=${DATA:-data/sample}
OUT=${OUT:-runs/main}
TRAIN_ARGS=${TRAIN_ARGS:---config configs/main-sample.yaml}   # the tiny preset at 256² with a mask refiner, 3,000 iterations; split on spaces
# Empty LAUNCH_ARGS: one process, `python -m vessel_nb.train` (what `accelerate launch` runs for one process, without
# the launcher's own traceback on Ctrl-C). Set, e.g. LAUNCH_ARGS="--num_processes 4": `accelerate launch -q $LAUNCH_ARGS`
# (-q: an error ends in the training's one `error:` line, not in the launcher's CalledProcessError traceback).
LAUNCH_ARGS=${LAUNCH_ARGS:-}
if [ -n "$LAUNCH_ARGS" ]; then TRAIN="accelerate launch -q $LAUNCH_ARGS -m vessel_nb.train"; else TRAIN="python -m vessel_nb.train"; fi
TITLE=${TITLE:-vessel_nb main job (tiny preset, embedded sample)}
start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - start )) s] $*"; }
rm -rf "$OUT"; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)

step "check the data"
python -m vessel_nb.dataset check "$DATA"

step "train ($TRAIN $TRAIN_ARGS)"   # Ctrl-C: saves a checkpoint and prints the command that continues
$TRAIN --data "$DATA" --work-dir "$OUT/train" $TRAIN_ARGS

step "compare the checkpoints on the validation split"
python -m vessel_nb.eval --checkpoints "$OUT/train" --data "$DATA" --out "$OUT/eval/checkpoints"
best=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['best'])" "$OUT/eval/checkpoints/checkpoints.json")

python -m vessel_nb.convert inspect "$OUT/train/$best"
MODEL="$OUT/train/$best"
if [ "${EXPORT:-1}" = 1 ]; then   # EXPORT=0 evaluates the checkpoint itself (same weights, unmerged)
  step "export $best (LoRA merged, self-test against the training model)"
  python -m vessel_nb.convert export "$OUT/train/$best" "$OUT/export"; MODEL="$OUT/export"
fi

step "evaluate $(basename "$MODEL") on the held-out test images (threshold chosen on validation) and the Frangi baseline"
python -m vessel_nb.eval --model "$MODEL" --data "$DATA" --split test --out "$OUT/eval/test"
python -m vessel_nb.eval --model frangi --data "$DATA" --split test --out "$OUT/eval/frangi"

step "render the report"
papermill -k python3 --log-level WARNING nbs/report.ipynb "$OUT/report.ipynb" \
    -p work_dir "$OUT/train" -p eval_dir "$OUT/eval" -p data_dir "$(cd "$DATA" && pwd)" -p title "$TITLE"
jupyter nbconvert --to html --no-input --embed-images --log-level WARN "$OUT/report.ipynb"
step "done"
echo "report: $OUT/report.html"
