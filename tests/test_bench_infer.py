"`bench/infer_gpu.py` on the tiny preset (CPU): both decoding modes print the stage table."
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_infer_bench_runs_tiny_on_cpu(tmp_path):
    rows = {}
    for mode in ([], ["--forced"]):
        out = tmp_path/f"r{len(mode)}.json"
        r = subprocess.run([sys.executable, "bench/infer_gpu.py", "--preset", "tiny", "--batches", "1", "--reps", "1", "--json", str(out), *mode],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "| batch | tiling ms |" in r.stdout
        rows[bool(mode)] = json.loads(out.read_text())
    assert rows[True]["env"]["forced_answer"] and not rows[False]["env"]["forced_answer"]
    assert all(set(x["rows"][0]) >= {"decode", "end_to_end", "frames_per_s"} for x in rows.values())
