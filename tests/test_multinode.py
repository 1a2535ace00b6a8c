"""Training on two machines, rehearsed on one host: two `accelerate launch --num_machines 2 --machine_rank 0/1` launchers
(CPU, gloo, the tiny preset) that meet at 127.0.0.1 — the commands of the "Training on several machines" page."""
import json, os, re, shlex, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from vessel_nb.core import read_jsonl
from vessel_nb.checkpoint import checkpoints

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT/"data"/"sample"
pytestmark = pytest.mark.skipif(not (DATA/"splits.json").is_file(), reason=f"{DATA} (the embedded sample) is missing")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}   # `accelerate` of this venv
# 12 iterations of 2 samples per process (2 processes: 6 iterations per epoch of the 24 samples, so 2 epochs), validated
# at 6 and 12, saved at 12
ARGS = ["--data", str(DATA), "--max-iters", "12", "--batch-size", "2", "--save-every", "100", "--eval-every", "6"]
MESSAGE = re.compile(r"^interrupted at iteration (\d+): saved checkpoint (\S+); continue with: (.+) \(on every machine, "
                     r"each with its own --machine_rank or --node_rank\)$", re.M)

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def machine(rank:int, port:int, multi_gpu:bool=True) -> list[str]:
    "The launcher of machine `rank` of 2 (one process each), meeting at 127.0.0.1:`port`."
    return ["accelerate", "launch", "-q", *["--multi_gpu"] * multi_gpu, "--num_machines", "2", "--machine_rank", str(rank),
            "--main_process_ip", "127.0.0.1", "--main_process_port", str(port), "--num_processes", "2",
            "--mixed_precision", "no", "--dynamo_backend", "no"]

def launch(cmds:list[list[str]], cwds:list[Path]) -> list[subprocess.Popen]:
    "Start machine 0, then machine 1, each in its folder (stdout, stderr to `m{rank}.out`, `m{rank}.err`; own process group)."
    ps = []
    for r, (cmd, cwd) in enumerate(zip(cmds, cwds)):
        cwd.mkdir(parents=True, exist_ok=True)
        ps.append(subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=open(cwd/f"m{r}.out", "w"), stderr=open(cwd/f"m{r}.err", "w"),
                                   start_new_session=True))
        time.sleep(0.5)   # machine 0 hosts the rendezvous, as the machine at --main_process_ip does
    return ps

def finish(ps:list[subprocess.Popen], cwds:list[Path], timeout:float=600) -> list[tuple[int, str, str]]:
    "(exit status, stdout, stderr) of each machine."
    try: rcs = [p.wait(timeout) for p in ps]
    finally:
        for p in ps:
            if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    return [(rc, (c/f"m{r}.out").read_text(), (c/f"m{r}.err").read_text()) for r, (rc, c) in enumerate(zip(rcs, cwds))]

def two_machines(tail:list[str], cwd:Path, **kw) -> list[tuple[int, str, str]]:
    "Run `tail` (`-m vessel_nb.train …` or a script) on two machines that share `cwd`."
    port = free_port()
    return finish(launch([machine(r, port, **kw) + tail for r in (0, 1)], [cwd, cwd]), [cwd, cwd])

def errors(err:str) -> list[str]: return [l for l in err.splitlines() if l.startswith("error")]

def weights(ck:Path) -> dict: return load_file(ck/"trainable.safetensors")

PLAN = "24 training samples on 2 process(es) = 2 machines × 1: 12 per process per epoch"

def test_two_machines_train_disjoint_shards_and_save_once(tmp_path):
    "bench/train_shards.py on two machines: each process its own shard, together every sample; one checkpoint, written once."
    res = two_machines([str(ROOT/"bench"/"train_shards.py"), "--data", str(DATA), "--work-dir", str(tmp_path/"w"), "--batch-size", "2"],
                       tmp_path)
    assert [rc for rc, *_ in res] == [0, 0], res[0][2][-3000:] + res[1][2][-3000:]
    (_, out0, _), (_, out1, _) = res
    assert PLAN in out0 and PLAN in out1   # each machine's log shows the plan
    assert "2 processes, 24 samples, 12 per process per epoch (padding 0), 6 iterations announced" in out0
    assert "OK: disjoint shards, full coverage, equal iteration counts" in out0
    assert [c.name for c in checkpoints(tmp_path/"w")] == ["iter_6"]
    s = json.loads((tmp_path/"w"/"provenance.json").read_text())["sessions"]
    assert len(s) == 1 and (s[0]["processes"], s[0]["machines"]) == (2, 2)
    assert not list((tmp_path/"w").glob(".shared-probe-*")) and not (tmp_path/"w"/"train.lock").exists()

@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    "The uninterrupted two-machine run: its work folder."
    d = tmp_path_factory.mktemp("straight")
    res = two_machines(["-m", "vessel_nb.train", *ARGS, "--work-dir", "w"], d)
    assert [rc for rc, *_ in res] == [0, 0], res[0][2][-3000:] + res[1][2][-3000:]
    assert PLAN in res[0][1] and PLAN in res[1][1]
    assert [c.name for c in checkpoints(d/"w")] == ["iter_6", "iter_12"]   # iter_6: the best validation so far
    assert [r["images"] for r in read_jsonl(d/"w"/"val_log.jsonl")] == [12, 12]   # gathered from both machines
    assert all(not errors(err) for _, _, err in res)
    return d/"w"

def test_ctrl_c_on_one_machine_stops_both_and_resume_is_exact(straight, tmp_path):
    "Ctrl-C to machine 1 only: both stop at one update, machine 0 saves once and prints the command; resumed on both = straight."
    work, port = tmp_path/"w", free_port()
    ps = launch([machine(r, port) + ["-m", "vessel_nb.train", *ARGS, "--work-dir", "w"] for r in (0, 1)], [tmp_path, tmp_path])
    end = time.time() + 600
    while len(read_jsonl(work/"train_log.jsonl")) < 2:
        assert all(p.poll() is None for p in ps) and time.time() < end, (tmp_path/"m0.err").read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(ps[1].pid, signal.SIGINT)   # Ctrl-C in machine 1's terminal
    (rc0, _, err0), (rc1, _, err1) = finish(ps, [tmp_path, tmp_path])
    assert rc0 != 0 and rc1 != 0   # launchers report the interrupt as a failure
    m = MESSAGE.findall(err0)
    assert len(m) == 1, err0[-3000:]
    n, cmd = int(m[0][0]), shlex.split(m[0][2])
    assert 2 <= n < 12 and m[0][1] == f"w/iter_{n}"
    assert not MESSAGE.findall(err1) and not errors(err0 + err1)   # said once, by the main process
    assert [c.name for c in checkpoints(work)][-1] == f"iter_{n}" and len(read_jsonl(work/"val_log.jsonl")) == (n >= 6)
    assert cmd[:2] == ["accelerate", "launch"] and cmd[-4:] == ["vessel_nb.train", "--config", "w/config.yaml", "--resume"]
    assert cmd[cmd.index("--machine_rank") + 1] == "0"
    # the printed command on each machine, with that machine's rank (and a fresh port: the old one may still be held)
    port = free_port()
    on = lambda r: [str(port) if a == cmd[cmd.index("--main_process_port") + 1] else str(r) if i == cmd.index("--machine_rank") + 1 else a
                    for i, a in enumerate(cmd)]
    res = finish(launch([on(0), on(1)], [tmp_path, tmp_path]), [tmp_path, tmp_path])
    assert [rc for rc, *_ in res] == [0, 0], res[0][2][-3000:] + res[1][2][-3000:]
    assert f"resuming after iteration {n}" in res[0][1]
    a, b = weights(straight/"iter_12"), weights(work/"iter_12")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)   # bit-identical to the straight run
    assert read_jsonl(work/"val_log.jsonl") == read_jsonl(straight/"val_log.jsonl")
    assert [c.name for c in checkpoints(work)] == ["iter_6", "iter_12"]
    s = json.loads((work/"provenance.json").read_text())["sessions"]
    assert [(x["ended_by"], x["machines"]) for x in s] == [("SIGINT", 2), ("finished", 2)]

def from_config_file(rank:int, port:int) -> list[str]:
    "Machine `rank` launched with the 2 × 4-GPU config file, scaled down here to one CPU process per machine on this host."
    return ["accelerate", "launch", "-q", "--config_file", str(ROOT/"configs"/"accelerate"/f"2x4gpu-machine{rank}.yaml"),
            "--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]

def test_work_folder_not_shared_is_refused(tmp_path):
    "Each machine in its own folder (`--work-dir w` is then two folders): one error line, by the main process; nothing left."
    a, b, port = tmp_path/"a", tmp_path/"b", free_port()
    res = finish(launch([from_config_file(r, port) + ["-m", "vessel_nb.train", *ARGS, "--work-dir", "w"] for r in (0, 1)], [a, b]), [a, b])
    assert [rc for rc, *_ in res] == [1, 1]
    e0, e1 = errors(res[0][2]), errors(res[1][2])
    assert len(e0) == 1 and e0[0].startswith(f"error: --work-dir w is not shared between the machines: process 1 on node 1 (host {socket.gethostname()}) "
                                         "cannot see the file the main process wrote there"), e0
    assert "put --work-dir on a filesystem mounted on every machine" in e0[0] and e1 == []
    assert not (a/"w").exists() and not (b/"w").exists()   # the lock and the folder it made are gone

def test_launch_without_multi_gpu_is_refused(tmp_path):
    "Without GPUs and --multi_gpu, accelerate starts one lone process per launcher: each refuses in one line, nothing is written."
    port = free_port()
    res = two_machines(["-m", "vessel_nb.train", *ARGS, "--work-dir", "w"], tmp_path, multi_gpu=False)
    for rc, _, err in res:
        assert rc == 1 and len(errors(err)) == 1 and "add --multi_gpu" in errors(err)[0], err[-3000:]
    assert not (tmp_path/"w").exists()

def test_accelerate_config_files_describe_two_machines_of_four_gpus():
    "configs/accelerate/2x4gpu-machine{0,1}.yaml: 8 processes on 2 machines, DDP, bf16; they differ only in machine_rank."
    from accelerate.commands.config.config_args import load_config_from_file
    c0, c1 = (load_config_from_file(str(ROOT/"configs"/"accelerate"/f"2x4gpu-machine{r}.yaml")) for r in (0, 1))
    assert (c0.num_machines, c0.num_processes, c0.distributed_type, c0.mixed_precision) == (2, 8, "MULTI_GPU", "bf16")
    assert (c0.machine_rank, c1.machine_rank) == (0, 1)
    assert {k: v for k, v in c0.to_dict().items() if v != c1.to_dict()[k]} == {"machine_rank": 0}
