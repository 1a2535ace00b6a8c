#!/usr/bin/env bash
# Create (or reuse) the project venv `.venv` and install everything vessel_nb needs, CPU-only.
# Idempotent: a second run only re-installs the package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
stamp=.venv/.vessel_nb-deps-$(sha256sum scripts/setup.sh | cut -c1-12)
# pip warns once per package about this machine's empty extra indexes; keep the log readable
pipq() { pip install -q "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; return "${PIPESTATUS[0]}"; }
if [ ! -f "$stamp" ]; then
  pipq --upgrade pip
  # CPU torch first and pinned: an unpinned torch (or an isolated build asking for one) pulls a multi-GB CUDA build.
  pipq "torch==2.13.0"
  pipq "transformers>=5.17" "peft>=0.21" "accelerate>=1.15" "nbdev>=3.3" "papermill>=2.6" \
      jupyterlab ipywidgets matplotlib opencv-python-headless pycocotools scikit-image scikit-learn \
      pytest pyyaml safetensors tqdm hydra-core iopath nbconvert ipykernel pydicom scipy "torch==2.13.0"
  # Meta's sam2 is source-only: build it against the installed torch, without its torchvision pin.
  SAM2_BUILD_CUDA=0 pipq --no-build-isolation --no-deps "sam2==1.1.0"
  touch "$stamp"
fi
pipq --no-deps --no-build-isolation -e .
python -m ipykernel install --sys-prefix --name python3 >/dev/null
