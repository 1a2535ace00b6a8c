#!/usr/bin/env bash
# The project's whole test job (CI runs exactly this via `make test`). Expects the venv to be active.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONHASHSEED=0
before=$(git status --porcelain --untracked-files=no)
nbdev-export
nbdev-clean
after=$(git status --porcelain --untracked-files=no)
if [ "$before" != "$after" ]; then
  echo "ERROR: nbdev-export / nbdev-clean changed tracked files; the notebooks and the package are out of sync:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  echo "Run 'nbdev-export && nbdev-clean' and commit the result." >&2
  exit 1
fi
nbdev-test --n-workers 2 --timing
python -m pytest -q -rs tests
