#!/usr/bin/env bash
# The project's whole test job (CI runs exactly this via `make test`). Expects the venv to be active.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONHASHSEED=0
state() { { git diff; git status --porcelain -- vessel_nb nbs; } | sha256sum; }
before=$(state)
nbdev-export
nbdev-clean
after=$(state)
if [ "$before" != "$after" ]; then
  echo "ERROR: nbdev-export / nbdev-clean changed files; the notebooks and the package are out of sync:" >&2
  git status --short -- vessel_nb nbs >&2
  echo "Run 'nbdev-export && nbdev-clean' and commit the result." >&2
  exit 1
fi
python scripts/readme.py --check
nbdev-test --n-workers 2 --timing
python -m pytest -q -rs tests
