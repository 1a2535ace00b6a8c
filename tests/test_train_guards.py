"Hostile inputs for `vessel_nb.train`: bad flags, a busy work folder, damaged checkpoints, a full disk, unreadable images."
import errno, json, os, shutil, socket, subprocess, sys
from dataclasses import replace
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from vessel_nb.core import read_jsonl
from vessel_nb.checkpoint import checkpoints
from vessel_nb.train import TrainConfig, TrainError, train, main, LOCK_FILE

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/"data"/"sample"
needs_data = pytest.mark.skipif(not (DATA/"splits.json").is_file(), reason=f"{DATA} (the embedded sample) is missing")

def cfg(work, data=DATA, **kw):
    return TrainConfig(data=str(data), work_dir=str(work), **{"max_iters": 4, "save_every": 2, "eval_every": 0, **kw})

def run_main(argv, capsys):
    "`main(argv)`: (exit status, stderr)."
    with pytest.raises(SystemExit) as e: main(argv)
    return e.value.code, capsys.readouterr().err

# ---- bad flags: every value refused with one `error:` line naming the flag, exit 1 (2 for argparse usage)
BAD_FLAGS = [
    (["--lr", "0"], "--lr 0.0: must be > 0"),
    (["--lr", "nan"], "--lr nan: must be > 0"),
    (["--save-every", "0"], "--save-every 0: must be >= 1"),
    (["--grad-clip", "-1"], "--grad-clip -1.0: must be > 0"),
    (["--weight-decay", "-0.5"], "--weight-decay -0.5: must be >= 0"),
    (["--warmup", "-1"], "--warmup -1.0: must be >= 0"),
    (["--repeats", "0"], "--repeats 0.0: must be > 0"),
    (["--keep", "0"], "--keep 0: must be >= 1"),
    (["--log-every", "0"], "--log-every 0: must be >= 1"),
    (["--eval-every", "-2"], "--eval-every -2: must be >= 0"),
    (["--seed", "-1"], "--seed -1: must be between 0"),
    (["--num-workers", "-1"], "--num-workers -1: must be >= 0"),
    (["--time-limit", "0"], "--time-limit 0.0: must be > 0"),
    (["--max-iters", "0"], "--max-iters 0: must be >= 1"),
    (["--epochs", "0", "--max-iters", "4"], "--epochs 0.0: must be > 0"),
    (["--stop-at", "0"], "--stop-at 0: must be >= 1"),
    (["--batch-size", "0"], "--batch-size 0: must be >= 1"),
    (["--data", ""], "--data '': must be a folder"),
    (["--mixed-precision", "fp8"], "--mixed-precision 'fp8': use bf16 or no"),
    (["--config", "tinyy"], "--config tinyy: unknown preset; use one of tiny"),
    (["--model", '{"sam_size": 100}'], '--model: unknown key(s) [\'sam_size\']; sam_size is a data field'),
    (["--model", '{"data": {"sam_size": 100}}'], "--model data.sam_size=100: SAM2 input side 100 must be a multiple of 32"),
    (["--model", '{"loss_dice": -1}'], "--model loss_dice=-1: must be >= 0"),
    (["--model", '{"lora_r": "8"}'], "--model lora_r='8': expected int"),
    (["--model", '{"data": 3}'], '--model: "data" must be a JSON object'),
]

@pytest.mark.parametrize("argv,msg", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_is_one_error_line(argv, msg, tmp_path, capsys):
    code, err = run_main([*argv, "--work-dir", str(tmp_path/"w")], capsys)
    assert code == 1 and err.startswith("error: ") and msg in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path/"w").exists()   # refused before anything is written

BAD_YAML = [("lr: [1e-4\n", "not readable YAML"), ("lr: fast\n", "--lr 'fast': expected float or null"),
            ("max_iters: 2.5\n", "--max-iters 2.5: expected int or null"), ("preset: tinyy\n", "unknown preset 'tinyy'"),
            ("- 1\n- 2\n", "expected a mapping"), ("gradient_checkpointing: 1\n", "expected bool"),
            ("save_every: 0\n", "--save-every 0: must be >= 1"), ("model: [1]\n", "--model [1]: expected dict")]

@pytest.mark.parametrize("text,msg", BAD_YAML)
def test_bad_yaml_is_one_error_line(text, msg, tmp_path, capsys):
    p = tmp_path/"c.yaml"; p.write_text(text)
    code, err = run_main(["--config", str(p), "--work-dir", str(tmp_path/"w")], capsys)
    assert code == 1 and msg in err and "Traceback" not in err, err

def test_yaml_numbers_as_text_are_numbers(tmp_path):
    from vessel_nb.train import load_config
    p = tmp_path/"c.yaml"; p.write_text("lr: 1e-4\nweight_decay: 0\n")
    c = load_config(str(p))
    assert (c.lr, c.weight_decay) == (1e-4, 0)

@pytest.mark.parametrize("argv", [["--lr", "abc"], ["--model", "{bad"], ["--max-iters", "1.5"]])
def test_usage_errors_exit_2(argv, capsys):
    code, err = run_main(argv, capsys)
    assert code == 2 and "error:" in err and "Traceback" not in err

def test_zero_is_not_replaced_by_a_default():
    "0 for lr / save_every is refused, never run with the preset's value; eval_every 0 means no validation."
    from vessel_nb.train import resolve_config
    for kw in (dict(lr=0.0), dict(save_every=0)):
        with pytest.raises(TrainError, match="must be"): resolve_config(cfg("w", **kw))
    assert resolve_config(cfg("w", eval_every=0)).eval_every == 0

def test_cli_prints_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vessel_nb.train", "--grad-clip", "-1", "--work-dir", str(tmp_path/"w")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stderr == "error: --grad-clip -1.0: must be > 0 (inf = no clipping)\n"

# ---- one run per work folder
def test_held_lock_refuses_a_second_run(tmp_path, capsys):
    w = tmp_path/"w"; w.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (w/LOCK_FILE).write_text(json.dumps(dict(pid=holder.pid, host=socket.gethostname(), started="2026-01-01T00:00:00")))
        code, err = run_main(["--data", str(DATA), "--work-dir", str(w), "--max-iters", "2"], capsys)
    finally: holder.kill(); holder.wait()
    assert code == 1 and f"in use by another training run (process {holder.pid} on {socket.gethostname()}" in err
    assert "another --work-dir" in err and str(w/LOCK_FILE) in err
    assert sorted(p.name for p in w.iterdir()) == [LOCK_FILE]   # nothing of the first run touched

def test_lock_of_another_host_is_not_taken(tmp_path, capsys):
    w = tmp_path/"w"; w.mkdir()
    (w/LOCK_FILE).write_text(json.dumps(dict(pid=1, host="elsewhere", started="x")))
    code, err = run_main(["--work-dir", str(w)], capsys)
    assert code == 1 and "process 1 on elsewhere" in err and f"delete {w/LOCK_FILE}" in err

def test_unreadable_lock_is_refused(tmp_path, capsys):
    w = tmp_path/"w"; w.mkdir(); (w/LOCK_FILE).write_text("{torn")
    code, err = run_main(["--work-dir", str(w)], capsys)
    assert code == 1 and "unreadable lock file" in err

@needs_data
def test_stale_lock_is_taken_over_and_released(tmp_path, capsys):
    w = tmp_path/"w"; w.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"]); gone.wait()
    (w/LOCK_FILE).write_text(json.dumps(dict(pid=gone.pid, host=socket.gethostname(), started="earlier")))
    train(cfg(w, max_iters=2))
    err = capsys.readouterr().err
    assert f"taking over the lock of an ended run (process {gone.pid} of this host no longer runs)" in err
    assert not (w/LOCK_FILE).exists() and [c.name for c in checkpoints(w)] == ["iter_2"]

@needs_data
def test_lock_released_after_an_error(tmp_path):
    w = tmp_path/"w"
    with pytest.raises(TrainError, match="already at iteration"):
        train(cfg(w, max_iters=2)); train(cfg(w, max_iters=2, resume=True, stop_at=1))
    assert not (w/LOCK_FILE).exists()

# ---- damaged checkpoints: --resume falls back to the newest intact one
@pytest.fixture(scope="module")
def ref_run(tmp_path_factory):
    w = tmp_path_factory.mktemp("ref")/"w"
    train(cfg(w))
    return w

def _truncate(d): p = d/"trainable.safetensors"; p.write_bytes(p.read_bytes()[:-7])
def _flip(d):
    p = d/"trainable.safetensors"; b = bytearray(p.read_bytes()); b[len(b) // 2] ^= 0x10; p.write_bytes(bytes(b))
def _meta(d): (d/"meta.json").write_text((d/"meta.json").read_text()[:-20])
def _opt(d): (d/"optimizer.pt").unlink()
DAMAGE = [(_truncate, "trainable.safetensors changed or truncated"), (_flip, "trainable.safetensors changed or truncated"),
          (_meta, "meta.json changed or truncated"), (_opt, "optimizer.pt missing")]

@needs_data
@pytest.mark.parametrize("damage,why", DAMAGE, ids=[d.__name__ for d, _ in DAMAGE])
def test_resume_skips_a_damaged_checkpoint(ref_run, tmp_path, capsys, damage, why):
    w = tmp_path/"w"; shutil.copytree(ref_run, w)
    damage(w/"iter_4")
    train(cfg(w, resume=True))
    err = capsys.readouterr().err
    assert f"--resume: skipped iter_4 (" in err and why in err and "moved it to iter_4.corrupt" in err
    assert (w/"iter_4.corrupt").is_dir() and (w/"latest").read_text().strip() == "iter_4"
    a, b = load_file(ref_run/"iter_4"/"trainable.safetensors"), load_file(w/"iter_4"/"trainable.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)    # resumed from iter_2: the same weights as the uninterrupted run
    assert [r["iter"] for r in read_jsonl(w/"train_log.jsonl")] == [1, 2, 3, 4]

@needs_data
def test_resume_with_no_intact_checkpoint(ref_run, tmp_path, capsys):
    w = tmp_path/"w"; shutil.copytree(ref_run, w)
    _opt(w/"iter_2"); _flip(w/"iter_4")
    code, err = run_main(["--config", str(w/"config.yaml"), "--work-dir", str(w), "--resume"], capsys)
    assert code == 1 and "no intact checkpoint" in err and "iter_2: optimizer.pt missing" in err and "--overwrite" in err

# ---- a full disk while writing a checkpoint
@needs_data
@pytest.mark.parametrize("exc,why", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 512 vs 0"), "the disk is full or the write was refused"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full;")])
def test_full_disk_names_the_intact_checkpoint(tmp_path, monkeypatch, exc, why):
    import vessel_nb.train as T
    w, real, calls = tmp_path/"w", T.torch.save, [0]
    def save(obj, f, *a, **k):
        calls[0] += 1
        if calls[0] > 2: raise exc     # the second checkpoint (2 torch.save files per checkpoint: optimizer, rng)
        return real(obj, f, *a, **k)
    monkeypatch.setattr(T.torch, "save", save)
    with pytest.raises(TrainError) as e: train(cfg(w))
    msg = str(e.value)
    assert f"saving checkpoint {w/'iter_4'} failed: {why}" in msg and f"the newest intact checkpoint is {w/'iter_2'}" in msg
    assert f"--config {w/'config.yaml'} --resume" in msg and "iter_4.tmp was removed" in msg
    assert not list(w.glob("*.tmp")) and [c.name for c in checkpoints(w)] == ["iter_2"] and not (w/LOCK_FILE).exists()
    monkeypatch.setattr(T.torch, "save", real)
    assert train(cfg(w, resume=True)).it == 4

# ---- an image that cannot be decoded
def _copy_data(tmp_path) -> Path:
    d = tmp_path/"data"; shutil.copytree(DATA, d)
    return d

def _corrupt(p:Path):
    "Pixel data zeroed; PNG signature, header and end chunk kept (a quick header check passes)."
    b = p.read_bytes(); p.write_bytes(b[:64] + bytes(len(b) - 76) + b[-12:])

@needs_data
def test_image_corrupted_during_the_run(tmp_path):
    "Images broken after the run started: a checkpoint of the last iteration, the image by pseudonym, how to go on."
    from vessel_nb.train import build_parts, resolve_config
    data, w = _copy_data(tmp_path), tmp_path/"w"
    c = cfg(w, data, max_iters=6, save_every=4)
    parts = build_parts(resolve_config(c))
    names = parts.train_images
    fwd, calls, saved = parts.model.forward, [0], {}
    def forward(batch):
        calls[0] += parts.model.training
        if calls[0] == 3 and not saved:        # during iteration 3: every training image becomes unreadable
            for n in names: saved[n] = (data/n).read_bytes(); _corrupt(data/n)
        return fwd(batch)
    parts.model.forward = forward
    with pytest.raises(TrainError) as e: train(c, parts)
    msg = str(e.value)
    assert "cannot be loaded" in msg and "at iteration 4" in msg and f"saved {w}/iter_3" in msg
    assert "video-" in msg and f"check {data} --decode" in msg and "--resume" in msg
    assert not any(x in msg for n in names for x in (n, Path(n).stem.split("(")[0]))   # no real (patient) name
    assert [c.name for c in checkpoints(w)] == ["iter_3"] and not (w/LOCK_FILE).exists()
    assert [r["iter"] for r in read_jsonl(w/"train_log.jsonl")][-1] == 3
    for n, b in saved.items(): (data/n).write_bytes(b)   # the images fixed: the run continues
    parts.model.forward = fwd
    assert train(replace(c, resume=True)).it == 6

@needs_data
def test_image_corrupt_from_the_start(tmp_path, capsys):
    "An image with a valid header and broken pixels: refused before training, by pseudonym, exit 1."
    data = _copy_data(tmp_path)
    name = json.loads((data/"splits.json").read_text())["train"][5]
    _corrupt(data/name)
    code, err = run_main(["--data", str(data), "--work-dir", str(tmp_path/"w"), "--max-iters", "2"], capsys)
    lines = [l for l in err.splitlines() if l.startswith("error")]
    assert code == 1 and len(lines) == 1 and err.endswith(lines[0] + "\n") and "Traceback" not in err
    assert "a training image cannot be read: image video-" in err and name not in err and Path(name).stem.split("(")[0] not in err and "--decode" in err
    assert not (tmp_path/"w").exists()   # the lock is released and the folder it created removed
