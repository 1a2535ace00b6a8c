"The main job end to end (train → checkpoint sweep → export → eval → Frangi → report) and the report on a run in progress."
import json, os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["Checkpoints", "Checkpoint details", "Dataset", "Training status", "Loss trend", "Metrics", "Next steps"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}

def html_text(path):
    "Visible text of a rendered report (tags and embedded images stripped)."
    h = re.sub(r'<img[^>]*>', '', Path(path).read_text())
    return re.sub(r'<[^>]+>', ' ', h)

@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("main") / "run"
    r = subprocess.run(["bash", "scripts/main.sh"], cwd=ROOT, capture_output=True, text=True,
                       env={**ENV, "OUT": str(out), "TRAIN_ARGS": "--max-iters 8 --save-every 4"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout

def test_main_job_writes_every_artefact(main_job):
    out, log = main_job
    for p in ["train/config.yaml", "train/provenance.json", "train/iter_8/trainable.safetensors", "export/export.json",
              "export/selftest.png", "eval/checkpoints/checkpoints.json", "eval/test/metrics.json", "eval/frangi/metrics.json",
              "report.ipynb", "report.html"]:
        assert (out/p).exists(), p
    assert f"report: {out}/report.html" in log

def test_held_out_and_provenance(main_job):
    out, _ = main_job
    m = json.loads((out/"eval/test/metrics.json").read_text())
    assert m["split"] == "test" and m["threshold_split"] == "val" and m["leakage"] == "clean"
    assert m["model"]["source"]["iteration"] in (4, 8)       # the export names the checkpoint it came from

def test_report_has_every_section_and_a_numeric_dice(main_job):
    out, _ = main_job
    text = html_text(out/"report.html")
    for s in SECTIONS: assert s in text, f"section {s!r} missing from the HTML report"
    assert re.search(r"model \(export of iteration \d+\)\s*\|?\s*(0|1)\.\d{4} ± \d\.\d{4}", text.replace("</td>", "|")) or \
           re.search(r"export of iteration \d+\s+(0|1)\.\d{4} ± ", text), "no numeric test Dice for the model"
    assert "Frangi baseline" in text and "Alex Sample" not in text   # pseudonyms only

def test_report_on_a_run_in_progress(tmp_path):
    work = tmp_path/"w"
    r = subprocess.run([sys.executable, "-m", "vessel_nb.train", "--data", str(ROOT/"data/sample"), "--work-dir", str(work),
                        "--max-iters", "8", "--stop-at", "4", "--save-every", "4", "--eval-every", "0"], cwd=ROOT, capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    nb = tmp_path/"r.ipynb"
    subprocess.run(["papermill", "-k", "python3", "--log-level", "WARNING", str(ROOT/"nbs/report.ipynb"), str(nb), "-p", "work_dir", str(work),
                    "-p", "eval_dir", str(tmp_path/"none")], cwd=ROOT, check=True, capture_output=True, env=ENV)
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", []))
    assert "4 / 8 iterations (50.0%)" in text and "ETA" in text and "--resume" in text
    assert "stopped by --stop-at after iteration 4" in text and "running" not in text   # provenance says how it ended
    assert "No test evaluation yet" in text
