#!/usr/bin/env bash
# Real angiograms: the public CIMAT set (40 training + 40 test X-ray coronary angiograms with expert masks) through
# the whole pipeline — import → split (the published test set kept; 8 of the 40 training images for validation) →
# train CONFIG from scratch → best checkpoint on validation → export → test once (threshold chosen on validation)
# and the Frangi baseline → report. Needs a GPU for the preset (~10 min on one H100); expects the venv active.
#   bash scripts/cimat.sh [CONFIG]          CONFIG default: configs/cimat-scratch.yaml; OUT default: runs/cimat/main
# TRAIN_EXTRA adds training flags (split on spaces: write JSON without spaces, e.g. --model {"loss_dice":2.0});
# PREPARE_ONLY=1 only imports and splits. Paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${CIMAT:-../shared/data/cimat_angios_80}
DATA=${DATA:-runs/cimat/data}
CONFIG=${1:-configs/cimat-scratch.yaml}
if [ ! -f "$DATA/annotations.json" ]; then
  if [ ! -d "$SRC" ]; then echo "the CIMAT angiograms are not at $SRC: set CIMAT=FOLDER (with Angios_40_training/ and Angios_40_testing/)" >&2; exit 2; fi
  python -m vessel_nb.dataset import masks "$SRC" "$DATA"
fi
[ -f "$DATA/splits.json" ] || python -m vessel_nb.dataset split "$DATA" --val 0.2 --test-glob 'Angios_40_testing_*' --seed 0
[ "${PREPARE_ONLY:-0}" = 1 ] && exit 0
export DATA OUT=${OUT:-runs/cimat/main} TRAIN_ARGS="--config $CONFIG ${TRAIN_EXTRA:-}"
export LAUNCH_ARGS=${LAUNCH_ARGS:---num_processes 1 --num_machines 1 --dynamo_backend no}
export TITLE=${TITLE:-CIMAT coronary angiograms, $(basename "$CONFIG" .yaml), trained from scratch}
exec bash scripts/main.sh
