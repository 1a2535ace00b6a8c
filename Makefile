# Two commands matter: `make main` (set up, then run the main job on the embedded data)
# and `make test` (set up, then run every check CI runs). Everything installs into .venv/.
SHELL := /bin/bash
VENV := .venv
ACT := source $(VENV)/bin/activate &&

.PHONY: setup main test sample sync-check nbtest pytest
setup:
	bash scripts/setup.sh

# Trains with one process (`python -m vessel_nb.train`; Ctrl-C saves a checkpoint and prints the command that continues);
# `LAUNCH_ARGS="--num_processes 4" make main` trains through `accelerate launch -q` instead.
main: setup
	$(ACT) bash scripts/main.sh

# Fails if nbdev-export or nbdev-clean would change a tracked file, then runs the notebooks and pytest.
test: setup
	$(ACT) bash scripts/test.sh

# Redraw the embedded sample data (data/sample) with the commands its docs give; a test checks they reproduce it.
sample: setup
	rm -rf data/sample
	$(ACT) python -m vessel_nb.dataset synth data/sample --videos 20 --frames 3 --size 224 --seed 0 && \
	python -m vessel_nb.dataset split data/sample --val 0.2 --test 0.4 --seed 0
