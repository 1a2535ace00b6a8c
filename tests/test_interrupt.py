"Ctrl-C and SIGTERM during a real tiny training (CPU, subprocesses): a checkpoint at a safe point, the command that continues, an exact resume."
import json, os, re, shlex, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from vessel_nb.core import read_jsonl
from vessel_nb.checkpoint import checkpoints, training_set

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/"data"/"sample"
pytestmark = pytest.mark.skipif(not (DATA/"splits.json").is_file(), reason=f"{DATA} (the embedded sample) is missing")

# 12 iterations of 4 samples, checkpoints only at the end (and where a signal stops the run); one thread per process,
# so every run below computes the same bits
ARGS = ["--data", str(DATA), "--max-iters", "12", "--batch-size", "4", "--save-every", "100", "--eval-every", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}   # `python`, `accelerate` of this venv
PY = [sys.executable, "-m", "vessel_nb.train"]
ACCELERATE = ["accelerate", "launch", "-q", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "-m", "vessel_nb.train"]
MESSAGE = re.compile(r"^interrupted at iteration (\d+): saved checkpoint (\S+); continue with: (.+)$", re.M)

def start(cmd:list, out:Path, **kw) -> subprocess.Popen:
    "Start `cmd` in `out`'s folder; stdout and stderr go to files (a full pipe would stall the run)."
    return subprocess.Popen(cmd, stdout=open(out/"stdout.txt", "w"), stderr=open(out/"stderr.txt", "w"), env=ENV, cwd=out, **kw)

def wait_logged(p:subprocess.Popen, work:Path, n:int, timeout:float=900):
    "Wait until the run has logged `n` iterations (fail if it ends or takes too long)."
    end = time.time() + timeout
    while len(read_jsonl(work/"train_log.jsonl")) < n:
        assert p.poll() is None, f"the run ended (status {p.returncode}) before logging {n} iterations"
        assert time.time() < end, f"no {n} iterations logged within {timeout} s"
        time.sleep(0.1)

def finish(p:subprocess.Popen, out:Path, timeout:float=900) -> tuple[int, str]:
    "(exit status, stderr) of a run that was started with `start`."
    rc = p.wait(timeout)
    return rc, (out/"stderr.txt").read_text()

def weights(ck:Path) -> dict: return load_file(ck/"trainable.safetensors")

def same(a:dict, b:dict) -> bool: return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    "The uninterrupted 12-iteration run: its final weights."
    d = tmp_path_factory.mktemp("ref")
    r = subprocess.run(PY + ARGS + ["--work-dir", "w"], capture_output=True, text=True, env=ENV, cwd=d, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'texts: "blood vessel" (24 objects)' in r.stdout   # the plan names what the run learns to segment
    assert training_set(d/"w"/"iter_12")["texts"] == {"blood vessel": 24}   # and the checkpoint carries it
    return weights(d/"w"/"iter_12")

def interrupted(err:str, work:Path, cwd:Path) -> tuple[int, str]:
    "Check the one `interrupted` line and the checkpoint it names; return (iteration, command to continue)."
    m = MESSAGE.findall(err)
    assert len(m) == 1, err[-3000:]
    n, ck, cmd = int(m[0][0]), Path(m[0][1]), m[0][2]
    assert 1 <= n < 12 and (cwd/ck).resolve() == (work/f"iter_{n}").resolve()
    assert [c.name for c in checkpoints(work)] == [f"iter_{n}"] and (work/"latest").read_text().strip() == f"iter_{n}"
    assert json.loads((work/f"iter_{n}"/"meta.json").read_text())["iter"] == n
    assert [r["iter"] for r in read_jsonl(work/"train_log.jsonl")][-1] == n   # the stop point is logged
    assert "Traceback" not in err and not (work/"train.lock").exists()
    return n, cmd

def test_ctrl_c_saves_and_the_printed_command_resumes_exactly(reference, tmp_path):
    "SIGINT to `python -m vessel_nb.train`: exit 130, iter_N saved, the command printed finishes the run bit-identically."
    work = tmp_path/"w"
    p = start(PY + ARGS + ["--work-dir", "w"], tmp_path)
    wait_logged(p, work, 2)
    p.send_signal(signal.SIGINT)
    rc, err = finish(p, tmp_path)
    assert rc == 130, err[-3000:]
    n, cmd = interrupted(err, work, tmp_path)
    assert "stopping: finishing the optimizer update in progress" in err
    assert cmd == shlex.join(["python", "-m", "vessel_nb.train", "--config", "w/config.yaml", "--resume"])
    assert json.loads((work/"provenance.json").read_text())["sessions"][-1]["ended_by"] == "SIGINT"
    # a changed schedule on --resume is refused with the folder named (no unformatted placeholder)
    r = subprocess.run(PY + ARGS + ["--work-dir", "w", "--resume", "--max-iters", "500"], capture_output=True, text=True,
                       env=ENV, cwd=tmp_path, timeout=600)
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "{work}" not in r.stderr, r.stderr[-3000:]
    assert "changed: max_iters 12 -> 500" in r.stderr and "--config w/config.yaml --resume" in r.stderr
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resuming after iteration {n}" in r.stdout and "finished after iteration 12 of 12" in r.stdout
    assert same(weights(work/"iter_12"), reference)

def test_sigterm_under_accelerate_launch(reference, tmp_path):
    "SIGTERM to the training process under `accelerate launch -q`: the launcher adds no traceback or warning; the printed command resumes exactly."
    import psutil
    work = tmp_path/"w"
    p = start(ACCELERATE + ARGS + ["--work-dir", "w"], tmp_path)
    wait_logged(p, work, 2)
    child = next(c for c in psutil.Process(p.pid).children(recursive=True) if "vessel_nb.train" in c.cmdline())
    child.send_signal(signal.SIGTERM)
    rc, err = finish(p, tmp_path)
    assert rc == 1, err[-3000:]   # accelerate's launcher reports any failure of its process as 1 (`-q`: without a traceback)
    assert "were not passed to `accelerate launch`" not in err   # every launcher default given: no warning
    n, cmd = interrupted(err, work, tmp_path)
    assert cmd == shlex.join(ACCELERATE + ["--config", "w/config.yaml", "--resume"])
    assert json.loads((work/"provenance.json").read_text())["sessions"][-1]["ended_by"] == "SIGTERM"
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert same(weights(work/"iter_12"), reference)

def test_second_ctrl_c_quits_at_once(tmp_path):
    "A second Ctrl-C (more than a second after the first) quits without finishing the update or saving: exit 130, no traceback."
    work = tmp_path/"w"   # one optimizer update = 48 iterations, so the first Ctrl-C alone would take 47 more
    p = start(PY + ["--data", str(DATA), "--max-iters", "48", "--grad-accum", "48", "--batch-size", "4", "--eval-every", "0",
                    "--work-dir", "w"], tmp_path)
    wait_logged(p, work, 1)
    p.send_signal(signal.SIGINT)
    for _ in range(100):  # again every 1.3 s until it quits (a signal that lands during a long backward pass waits for it)
        time.sleep(1.3)
        if p.poll() is not None or "interrupted" in (tmp_path/"stderr.txt").read_text(): break
        p.send_signal(signal.SIGINT)
    rc, err = finish(p, tmp_path, timeout=60)
    assert rc == 130, err[-3000:]
    last = read_jsonl(work/"train_log.jsonl")[-1]["iter"]
    assert last < 48 and checkpoints(work) == [], err[-3000:]   # stopped inside the first update, nothing saved
    assert re.search(r"^interrupted again at iteration \d+: quit without saving; no checkpoint yet: start again with --overwrite$", err, re.M), err[-3000:]
    assert "Traceback" not in err and not (work/"train.lock").exists()

def test_ctrl_c_under_torchrun_stops_every_process_at_one_iteration(tmp_path):
    "Ctrl-C to a 2-process torchrun (the terminal signals every process; torchrun forwards it again): one request, one saved iteration, one message."
    work = tmp_path/"w"
    p = start(["torchrun", "--nproc_per_node", "2", "-m", "vessel_nb.train", *ARGS, "--batch-size", "2", "--work-dir", "w"], tmp_path,
              start_new_session=True)
    wait_logged(p, work, 2)
    os.killpg(p.pid, signal.SIGINT)   # what Ctrl-C in a terminal does: the whole process group
    rc, err = finish(p, tmp_path)
    assert rc != 0   # torchrun reports its own SignalException (a launcher traceback we cannot turn off)
    m = MESSAGE.findall(err)
    assert len(m) == 1 and "interrupted again" not in err, err[-3000:]   # the forwarded copy did not count as a second Ctrl-C
    n = int(m[0][0])
    assert m[0][2] == shlex.join(["torchrun", "--nproc_per_node", "2", "-m", "vessel_nb.train", "--config", "w/config.yaml", "--resume"])
    assert [c.name for c in checkpoints(work)] == [f"iter_{n}"]
    assert json.loads((work/f"iter_{n}"/"sampler.json").read_text())["world"] == 2
    assert not re.search(r"^(error|interrupted) \(process", err, re.M)   # no second message from the other process
