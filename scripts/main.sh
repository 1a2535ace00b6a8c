#!/usr/bin/env bash
# The main job on the embedded sample data. Expects the venv to be active (`make main` does that).
# Stage 1 (dataset): check, stats and previews of data/sample. Later stages are added as their modules land.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
DATA=${DATA:-data/sample}
OUT=${OUT:-runs/main}
mkdir -p "$OUT"
python -m vessel_nb.dataset check "$DATA"
python -m vessel_nb.dataset stats "$DATA"
python -m vessel_nb.dataset preview "$DATA" "$OUT/preview" -n 4
echo "previews written to $OUT/preview"
