"End-to-end tests of `vessel_nb.train` with the real tiny model on the embedded sample data (CPU)."
import json, os, shutil, subprocess, sys
from dataclasses import asdict, replace
from pathlib import Path
import pytest, torch, yaml
from safetensors.torch import load_file
from vessel_nb.core import read_jsonl
from vessel_nb.checkpoint import checkpoints
from vessel_nb.train import (TrainConfig, TrainError, TrainingDiverged, train, build_parts, resolve_config,
                             load_config, main, LOSS_KEYS)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/"data"/"sample"
pytestmark = pytest.mark.skipif(not (DATA/"splits.json").is_file(), reason=f"{DATA} (the embedded sample) is missing")

def cfg(work, **kw):
    return TrainConfig(data=str(DATA), work_dir=str(work), **{"max_iters": 4, "save_every": 2, "eval_every": 2, **kw})

def losses(work): return [{k: r[k] for k in ("iter", "epoch", "lr", *LOSS_KEYS)} for r in read_jsonl(Path(work)/"train_log.jsonl")]

@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    "One uninterrupted 4-iteration run, the reference for the resume test."
    work = tmp_path_factory.mktemp("one")/"w"
    train(cfg(work))
    return work

def test_exact_resume(one_run, tmp_path):
    "--max-iters 4 --stop-at 2, then --resume: same weights and same logged losses as one 4-iteration run."
    work = tmp_path/"w"
    train(cfg(work, stop_at=2))
    assert [c.name for c in checkpoints(work)] == ["iter_2"]
    with pytest.raises(TrainError, match="already holds a run"): train(cfg(work))
    with pytest.raises(TrainError, match="changed: lr") as e: train(cfg(work, resume=True, lr=0.5))
    assert f"--config {work}/config.yaml --resume" in str(e.value)   # the folder named, not a placeholder
    train(cfg(work, resume=True))
    a, b = load_file(one_run/"iter_4"/"trainable.safetensors"), load_file(work/"iter_4"/"trainable.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(work) == losses(one_run) and [r["iter"] for r in losses(work)] == [1, 2, 3, 4]
    assert read_jsonl(work/"val_log.jsonl") == read_jsonl(one_run/"val_log.jsonl")
    prov = json.loads((work/"provenance.json").read_text())
    assert [s["resume"] for s in prov["sessions"]] == [False, True]
    assert not load_config(str(work/"config.yaml")).resume  # config.yaml repeats the run; --resume is a flag
    with pytest.raises(TrainError, match="already at iteration 4"): train(cfg(work, resume=True, stop_at=2))

def test_work_folder_contract(one_run):
    "The files and keys of nbs/explanations/architecture.md 'Work folder'."
    w = one_run
    c = load_config(str(w/"config.yaml"))
    assert c == resolve_config(cfg(w))
    assert (w/"latest").read_text().strip() == "iter_4"
    assert (w/"best").read_text().strip() in ("iter_2", "iter_4")
    prov = json.loads((w/"provenance.json").read_text())
    for k in ("data_fingerprint", "split_fingerprints", "train_images_sha256", "identity", "sessions"): assert k in prov
    s = prov["sessions"][0]
    assert "commit" in s["git"] and s["packages"]["torch"] and s["processes"] == 1
    log = read_jsonl(w/"train_log.jsonl")
    assert set(log[0]) >= {"iter", "epoch", "lr", "loss", "loss_mask", "loss_dice", "loss_llm", "sec_per_iter",
                           "samples_per_s", "gpu_mem_gb"}
    assert all(r["loss"] == pytest.approx(2.0 * r["loss_mask"] + 0.5 * r["loss_dice"] + r["loss_llm"], rel=1e-5) for r in log)
    val = read_jsonl(w/"val_log.jsonl")
    assert [v["iter"] for v in val] == [2, 4] and all(0 <= v["dice"] <= 1 and 0 <= v["iou"] <= 1 for v in val)
    assert all(v["images"] == 12 for v in val)
    d = w/"iter_4"
    assert {p.name for p in d.iterdir()} == {"trainable.safetensors", "meta.json", "optimizer.pt", "rng.pt", "sampler.json",
                                          "training_set.json", "checksums.json"}
    assert json.loads((d/"training_set.json").read_text())["n"] == 24 and not (w/"train.lock").exists()
    from vessel_nb.checkpoint import training_set
    assert training_set(d)["texts"] == {"blood vessel": 24}   # the descriptions the model was trained on travel with it
    meta = json.loads((d/"meta.json").read_text())
    for k in ("iter", "epoch", "max_iters", "time", "config", "model_config", "identity", "data_fingerprint", "split_fingerprints"):
        assert k in meta, k
    assert (meta["iter"], meta["max_iters"], meta["config"]["lr"]) == (4, 4, 1e-3)
    assert meta["data_fingerprint"] == prov["data_fingerprint"]
    assert json.loads((d/"sampler.json").read_text())["world"] == 1
    assert not list(w.glob("*.tmp")) and not list(w.glob(".*tmp*"))

def test_keep_last_k_plus_best(tmp_path):
    "With --keep 1 the latest and the best checkpoint survive, nothing else."
    w = tmp_path/"w"
    run = train(cfg(w, max_iters=6, keep=1))
    names = [c.name for c in checkpoints(w)]
    assert names[-1] == "iter_6" and f"iter_{run.best['iter']}" in names and len(names) <= 2
    assert (w/"best").read_text().strip() == f"iter_{run.best['iter']}"
    best = max(read_jsonl(w/"val_log.jsonl"), key=lambda v: v["dice"])  # first of equals wins
    assert run.best["dice"] == best["dice"]

def _patched_parts(c, fail_at, exc):
    "Real tiny parts whose model fails at iteration `fail_at` (1-based): NaN loss or an exception."
    parts = build_parts(resolve_config(c))
    fwd, calls = parts.model.forward, [0]
    def forward(batch):
        out = fwd(batch)
        if parts.model.training: calls[0] += 1
        if calls[0] == fail_at and parts.model.training:
            if exc: raise exc
            out = {**out, "loss": out["loss"] * float("nan")}
        return out
    parts.model.forward = forward
    return parts

def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    "A NaN loss at iteration 3: exit status 1, the message names iteration 3, iter_2 is kept, nothing later is saved."
    w = tmp_path/"w"
    c = cfg(w, max_iters=6, log_every=1)
    monkeypatch.setattr("vessel_nb.train.build_parts", lambda cf, device=None: _patched_parts(cfg(w, max_iters=6), 3, None))
    with pytest.raises(SystemExit) as e: main(["--data", str(DATA), "--work-dir", str(w), "--max-iters", "6", "--save-every", "2", "--eval-every", "2"])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "error: loss is nan at iteration 3" in err and "iter_2" in err
    assert [c.name for c in checkpoints(w)] == ["iter_2"] and (w/"latest").read_text().strip() == "iter_2"
    assert [r["iter"] for r in read_jsonl(w/"train_log.jsonl")] == [1, 2]

def test_oom_names_memory_and_flags(tmp_path):
    c = cfg(tmp_path/"w", eval_every=0)
    with pytest.raises(TrainError, match=r"out of memory at iteration 2 with batch size 1 .*--gradient-checkpointing"):
        train(c, _patched_parts(c, 2, torch.OutOfMemoryError("CUDA out of memory (simulated)")))

def test_empty_val_split_is_a_clear_error(tmp_path):
    data = tmp_path/"d"; data.mkdir()
    for f in DATA.iterdir(): shutil.copy(f, data/f.name)   # copies: links out of the data folder are refused
    sp = json.loads((DATA/"splits.json").read_text()); sp["train"] += sp["val"]; sp["val"] = []
    (data/"splits.json").unlink(); (data/"splits.json").write_text(json.dumps(sp))
    with pytest.raises(TrainError, match="validation split is empty"): train(replace(cfg(tmp_path/"w"), data=str(data)))
    sp["train"] = []; (data/"splits.json").write_text(json.dumps(sp))
    with pytest.raises(Exception, match="no annotated images"): train(replace(cfg(tmp_path/"w2", eval_every=0), data=str(data)))

def test_two_processes_train_disjoint_shards(tmp_path):
    "A real 2-process run (torchrun, gloo on CPU): each rank its own shard, together all samples, same iteration count."
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(ROOT/"bench"/"train_shards.py"),
                        "--data", str(DATA), "--work-dir", str(tmp_path/"w")], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 processes, 24 samples, 12 per process per epoch (padding 0), 12 iterations announced" in r.stdout
    assert "OK: disjoint shards, full coverage, equal iteration counts" in r.stdout
    assert len(read_jsonl(tmp_path/"w"/"train_log.jsonl")) == 12

def test_bench_train_gpu_runs_tiny_on_cpu(tmp_path):
    "bench/train_gpu.py --preset tiny runs on CPU and prints a table with positive throughput."
    out = tmp_path/"rows.json"
    r = subprocess.run([sys.executable, str(ROOT/"bench"/"train_gpu.py"), "--preset", "tiny", "--batch-size", "1", "2",
                        "--tiles", "1", "--steps", "2", "--warmup", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| tiles | batch/process | tokens/sample | s/step | samples/s | tokens/s |" in r.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [(x["tiles"], x["batch"]) for x in rows] == [(1, 1), (1, 2)]
    assert all(x["s_per_step"] > 0 and x["samples_per_s"] > 0 and x["tflops_per_sample"] > 0 for x in rows)

def test_log_timing_covers_the_whole_window(tmp_path):
    "sec_per_iter averages every iteration of a log window (here each training forward sleeps 1 s)."
    import time
    c = cfg(tmp_path/"w", eval_every=0, log_every=2)
    parts = build_parts(resolve_config(c))
    fwd = parts.model.forward
    parts.model.forward = lambda b: (time.sleep(1.0), fwd(b))[1]
    train(c, parts)
    log = read_jsonl(tmp_path/"w"/"train_log.jsonl")
    assert [r["iter"] for r in log] == [2, 4] and all(r["sec_per_iter"] >= 1.0 for r in log)
    assert all(r["samples_per_s"] == pytest.approx(1 / r["sec_per_iter"]) for r in log)

def test_time_limit_stops_cleanly_and_resumes(tmp_path, capsys):
    "--time-limit stops at an update boundary with a validated checkpoint; --resume finishes the planned run."
    work = tmp_path/"w"
    run = train(cfg(work, max_iters=400, save_every=1000, eval_every=1000, time_limit=0.001))
    assert 1 <= run.it < 400 and [c.name for c in checkpoints(work)] == [f"iter_{run.it}"]
    assert read_jsonl(work/"val_log.jsonl")[-1]["iter"] == run.it      # the stop point is validated
    assert "time-limit" in capsys.readouterr().out
    end = json.loads((work/"provenance.json").read_text())["sessions"][-1]
    assert (end["last_iter"], end["ended_by"]) == (run.it, "--time-limit") and end["ended"]
    done = train(cfg(work, max_iters=400, save_every=1000, eval_every=1000, resume=True, stop_at=run.it + 2))
    assert done.it == run.it + 2

def test_augment_and_model_overrides_reach_the_run(tmp_path):
    "`augment` and `model` overrides are part of the run: recorded, used, and a change refuses --resume."
    work = tmp_path/"w"
    c = cfg(work, max_iters=2, augment=True, model={"loss_dice": 3.0, "data": {"mask_size": 64}})
    run = train(c)
    assert run.parts.train_ds.augment is not None and run.parts.train_ds.cfg.mask_size == 64
    meta = json.loads((work/"iter_2"/"meta.json").read_text())
    assert meta["model_config"]["loss_dice"] == 3.0 and meta["config"]["augment"] is True
    with pytest.raises(TrainError, match="changed: model"): train(replace(c, resume=True, model={}))

def test_cldice_loss_is_logged(one_run, tmp_path):
    "`loss_cldice` is a logged loss: 0 by default, positive (and part of `loss`) when the model config weights it."
    assert all(r["loss_cldice"] == 0 for r in read_jsonl(one_run/"train_log.jsonl"))
    work = tmp_path/"w"
    train(cfg(work, max_iters=2, eval_every=0, model={"loss_cldice": 0.5}))
    log = read_jsonl(work/"train_log.jsonl")
    assert [r["iter"] for r in log] == [1, 2] and all(r["loss_cldice"] > 0 for r in log)
    assert all(r["loss"] == pytest.approx(2 * r["loss_mask"] + 0.5 * r["loss_dice"] + r["loss_llm"] + 0.5 * r["loss_cldice"], rel=1e-5)
               for r in log)   # the preset's weights 2, 0.5, 1 and clDice 0.5
