"CLI and pure-function tests of `vessel_nb.train` (CPU, no model needed)."
import subprocess, sys
import pytest
from vessel_nb.train import shard_indices, samples_per_rank, make_plan, TrainConfig, get_lr, parse_args

def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vessel_nb.train", *args], capture_output=True, text=True, timeout=300, **kw)

@pytest.mark.parametrize("n,world", [(10, 2), (11, 2), (7, 3), (1219, 4), (3, 4)])
def test_shards_disjoint_and_cover(n, world):
    "Every epoch: equal-size shards that together cover the data; overlaps only as many as the documented padding."
    per = samples_per_rank(n, world)
    for epoch in range(3):
        shards = [shard_indices(n, epoch, r, world, seed=7, per_rank=per) for r in range(world)]
        assert all(len(s) == per for s in shards)
        flat = sum(shards, [])
        assert set(flat) == set(range(n))
        assert len(flat) - len(set(flat)) == per * world - n  # duplicates == padding
        if per * world == n: assert all(not set(a) & set(b) for i, a in enumerate(shards) for b in shards[i + 1:])

def test_shards_differ_by_epoch_and_seed():
    assert shard_indices(100, 0, 0, 2, 0) != shard_indices(100, 1, 0, 2, 0)
    assert shard_indices(100, 0, 0, 2, 0) != shard_indices(100, 0, 0, 2, 1)
    assert shard_indices(100, 3, 1, 2, 5) == shard_indices(100, 3, 1, 2, 5)

def test_plan_is_per_process():
    "The user's run: 12,190 samples, accumulation 8 → 12,192 iterations on 1 process, 3,048 on 4 (sa2va.md §2.3)."
    assert make_plan(12190, 1, TrainConfig(epochs=1, grad_accum=8)).max_iters == 12192
    assert make_plan(12190, 4, TrainConfig(epochs=1, grad_accum=8)).max_iters == 3048

def test_lr_schedule():
    assert get_lr(0, 1.0, 4, 20) == pytest.approx(0.25)
    assert get_lr(3, 1.0, 4, 20) == pytest.approx(1.0)
    assert get_lr(12, 1.0, 4, 20) == pytest.approx(0.5)
    assert get_lr(19, 1.0, 4, 20) < 0.01

def test_parse_args_overrides_yaml(tmp_path):
    p = tmp_path/"c.yaml"; p.write_text("preset: internvl3-2b\nmax_iters: 100\nlr: 1.0e-4\n")
    c = parse_args(["--config", str(p), "--epochs", "2"])
    assert (c.preset, c.max_iters, c.epochs, c.lr) == ("internvl3-2b", None, 2.0, 1e-4)

def test_help_lists_every_flag():
    r = cli("--help")
    assert r.returncode == 0
    for flag in ("--config", "--data", "--work-dir", "--max-iters", "--epochs", "--batch-size", "--grad-accum", "--lr",
                 "--warmup", "--save-every", "--keep", "--eval-every", "--resume", "--stop-at", "--seed",
                 "--gradient-checkpointing", "--fsdp", "--overwrite", "--num-workers"):
        assert flag in r.stdout, flag
    assert "data folder with annotations.json" in r.stdout  # help text comes from the config's comments

def test_missing_data_folder_is_a_clear_error(tmp_path):
    r = cli("--data", str(tmp_path/"nope"), "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and "data folder" in r.stderr and "not found" in r.stderr and "Traceback" not in r.stderr

def test_no_splits_is_a_clear_error(tmp_path):
    (tmp_path/"annotations.json").write_text("[]")
    r = cli("--data", str(tmp_path), "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and "splits.json" in r.stderr and "vessel_nb.dataset split" in r.stderr

def test_bad_flags(tmp_path):
    r = cli("--max-iters", "4", "--epochs", "1", "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and "exclusive" in r.stderr
    r = cli("--max-iters", "6", "--grad-accum", "4", "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and "multiple of --grad-accum" in r.stderr

def test_fsdp_on_cpu_is_refused(tmp_path):
    import torch
    if torch.cuda.is_available(): pytest.skip("this checks the CPU message")
    r = cli("--fsdp", "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and "--fsdp" in r.stderr and "needs CUDA" in r.stderr

def test_example_configs_load_and_resolve():
    "Every configs/*.yaml holds only TrainConfig fields and a valid combination."
    from pathlib import Path
    from vessel_nb.train import load_config, resolve_config
    files = sorted((Path(__file__).resolve().parents[1]/"configs").glob("*.yaml"))
    assert files
    for f in files:
        c = resolve_config(load_config(str(f)))
        assert c.max_iters or c.epochs, f

def test_unknown_config_is_one_line(tmp_path):
    "A misspelt --config: one `error:` line naming the presets and the nearest one, no traceback."
    r = cli("--config", "tinyy", "--work-dir", str(tmp_path/"w"))
    assert r.returncode == 1 and r.stderr.splitlines() == [
        "error: --config tinyy: unknown preset; use one of tiny, internvl3-1b, internvl3-2b, internvl3-8b, scratch-t, scratch-s "
        "or a YAML file (did you mean tiny?)"], r.stderr

LAUNCH = ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]

def test_error_under_accelerate_launch_is_one_line(tmp_path):
    "`accelerate launch -q` with every launcher default given: our one `error:` line, no CalledProcessError, no warning."
    import os
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(["accelerate", "launch", "-q", *LAUNCH, "-m", "vessel_nb.train", "--config", "tinyy"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 1 and [l for l in r.stderr.splitlines() if l.strip()] == [
        l for l in r.stderr.splitlines() if l.startswith("error: --config tinyy: unknown preset")], r.stderr

def test_error_under_torchrun_is_said_once(tmp_path):
    "Two processes that meet the same mistake: one `error:` line (from the main process), not one per process."
    import os
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "vessel_nb.train",
                        "--data", "nope", "--work-dir", "w"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 1
    errors = [l for l in r.stderr.splitlines() if l.startswith("error")]
    assert errors == ["error: data folder nope not found; pass --data DIR or set `paths.data` in settings.ini"], r.stderr[-3000:]
