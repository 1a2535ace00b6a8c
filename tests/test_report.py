"The main job end to end (train → checkpoint sweep → export → eval → Frangi → report), its figures under any matplotlib backend, the held-out check, and the report on a run in progress."
import base64, json, os, re, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["Checkpoints", "Checkpoint details", "Dataset", "Training status", "Loss trend", "Metrics", "Next steps"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}

def html_text(path):
    "Visible text of a rendered report (tags and embedded images stripped)."
    h = re.sub(r'<img[^>]*>', '', Path(path).read_text())
    return re.sub(r'<[^>]+>', ' ', h)

FIXED_FIGURES = ["dataset preview", "training losses", "threshold", "colour legend"]   # + one panel per best / median / worst test case

def render(nb_in, nb_out, params, backend="Agg"):
    "Run the report with papermill and nbconvert as `scripts/main.sh` does, under the matplotlib backend `backend` (None: unset)."
    env = {k: v for k, v in ENV.items() if k != "MPLBACKEND"} | ({"MPLBACKEND": backend} if backend else {})
    args = [a for k, v in params.items() for a in ("-p", k, str(v))]
    subprocess.run(["papermill", "-k", "python3", "--log-level", "WARNING", str(nb_in), str(nb_out), *args], cwd=ROOT, check=True, capture_output=True, env=env)
    subprocess.run(["jupyter", "nbconvert", "--to", "html", "--no-input", "--embed-images", "--log-level", "WARN", str(nb_out)], cwd=ROOT, check=True, capture_output=True, env=env)
    return Path(nb_out), Path(nb_out).with_suffix(".html")

def notebook_figures(nb):
    "The PNG figures in an executed notebook's outputs (decoded bytes)."
    outs = [o for c in json.loads(Path(nb).read_text())["cells"] for o in c.get("outputs", [])]
    return [base64.b64decode(o["data"]["image/png"]) for o in outs if "image/png" in o.get("data", {})]

def html_figures(html):
    "`(alt, PNG bytes)` of every image in a rendered report."
    imgs = re.findall(r"<img[^>]*>", Path(html).read_text())
    alt = lambda t: (re.search(r'alt="([^"]*)"', t) or [None, None])[1]
    png = lambda t: base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', t)[1]) if "data:image/png;base64," in t else b""
    return [(alt(t), png(t)) for t in imgs]

def assert_figures(nb, html, n):
    "`n` figures in the notebook and the same `n` in the HTML, each a real PNG with its own description."
    figs, shown = notebook_figures(nb), html_figures(html)
    assert len(figs) == n, f"{len(figs)} figures in the executed notebook, expected {n}"
    assert len(shown) == n, f"{len(shown)} images in the HTML report, expected {n}"
    for alt, png in shown:
        assert png.startswith(b"\x89PNG") and len(png) > 5000, f"image {alt!r} is not an embedded PNG"
        assert alt and "No description" not in alt, "an image without alternative text"
    for want in FIXED_FIGURES: assert any(want in a.lower() for a, _ in shown), f"no {want} figure"
    assert sum("test case" in a for a, _ in shown) == 3, "the best / median / worst panels are missing"
    for tag in re.findall(r"<img[^>]*>", Path(html).read_text()):
        if "test case" not in tag: continue
        assert 'style="width:100%"' in tag, "a best / median / worst panel is not shown at the full page width"
        png = base64.b64decode(re.search(r'base64,([^"]+)"', tag)[1])
        assert int.from_bytes(png[16:20], "big") >= 900, "a case panel PNG is too narrow to read at page width"
    legend = next(a for a, _ in shown if "colour legend" in a)
    for want in ("false positive", "false negative", "true positive", "GT overlay", "prediction overlay"): assert want in legend, f"the colour legend does not explain {want!r}"

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

def test_report_shows_every_figure(main_job):
    "`scripts/main.sh` exports MPLBACKEND=Agg: the report still shows the dataset preview, the losses, the threshold curve and the three cases."
    out, _ = main_job
    assert len(json.loads((out/"eval/test/metrics.json").read_text())["figures"]) == 3
    assert_figures(out/"report.ipynb", out/"report.html", len(FIXED_FIGURES) + 3)

@pytest.mark.parametrize("backend", ["pdf", "module://matplotlib_inline.backend_inline", None])
def test_report_figures_under_any_backend(main_job, backend, tmp_path):
    "Each figure exactly once whatever the backend (a non-interactive one hides `plt.show()`; the inline one would show a figure twice)."
    out, _ = main_job
    nb, html = render(ROOT/"nbs/report.ipynb", tmp_path/"r.ipynb", dict(work_dir=out/"train", eval_dir=out/"eval", data_dir=ROOT/"data/sample"), backend)
    assert_figures(nb, html, len(FIXED_FIGURES) + 3)

HELD_OUT = [   # (fields of metrics.json as `eval` writes them, what the Held-out check line must say)
    (dict(leakage="clean", leakage_reason="none of the 12 evaluated images is in the model's training set of 24 (by name or by pixels)", leakage_acknowledged=False,
          overlap=dict(status="clean", n=0, images=[], by_name=[], by_content=[], acknowledged=False, flag=None)),
     ["model: clean — none of the 12 evaluated images", "the numbers are held-out"]),
    (dict(leakage="overlap", leakage_reason="2 of the 12 evaluated 'test' images are in the model's training set", leakage_acknowledged=True,
          overlap=dict(status="overlap", n=2, images=["video-aaaaaaaaaaaa_frame_000001", "video-bbbbbbbbbbbb_frame_000002"],
                       by_name=["video-aaaaaaaaaaaa_frame_000001"], by_content=["video-bbbbbbbbbbbb_frame_000002"], acknowledged=True, flag="--allow-overlap")),
     ["2 overlapping images", "video-aaaaaaaaaaaa_frame_000001", "video-bbbbbbbbbbbb_frame_000002", "not held-out", "--allow-overlap"]),
    (dict(leakage="leak", leakage_reason="3 of the 12 evaluated images were used to fit the model", leakage_acknowledged=True),   # an older metrics.json
     ["overlapping", "not held-out", "evaluated anyway"]),
    (dict(leakage="unknown", leakage_reason="the model carries no record of its training set", leakage_acknowledged=True,
          overlap=dict(status="unknown", n=None, images=[], by_name=[], by_content=[], acknowledged=True, flag="--allow-unknown-training-set")),
     ["model: unknown", "the model carries no record of its training set", "cannot be ruled out", "--allow-unknown-training-set"]),
    (dict(leakage="clean", leakage_reason="none", leakage_acknowledged=False, excluded_n=1,
          excluded=[dict(image="video-cccccccccccc_frame_000003", split="test", reason="polygon 1 has 2 points")]),
     ["1 invalid entry excluded", "video-cccccccccccc_frame_000003 (test split: polygon 1 has 2 points)"]),
]

@pytest.mark.parametrize("fields,says", HELD_OUT)
def test_report_held_out_check(fields, says, tmp_path):
    "The report states at the top whether the test numbers are held-out: clean, N overlapping images (named by pseudonym) or unknown."
    m = dict(split="test", n_images=12, n_videos=2, threshold=0.5, threshold_split="val", threshold_source="val curve", model_spec="exported",
             figures={}, **{k: 0.5 for k in ["dice", "iou", "precision", "recall", "specificity", "accuracy", "cldice"]})
    (tmp_path/"eval/test").mkdir(parents=True)
    (tmp_path/"eval/test/metrics.json").write_text(json.dumps({**m, **fields}))
    nb = tmp_path/"r.ipynb"
    subprocess.run(["papermill", "-k", "python3", "--log-level", "WARNING", str(ROOT/"nbs/report.ipynb"), str(nb), "-p", "work_dir", str(tmp_path/"none"),
                    "-p", "eval_dir", str(tmp_path/"eval")], cwd=ROOT, check=True, capture_output=True, env=ENV)
    mds = ["".join(o.get("data", {}).get("text/markdown", "")) for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", [])]
    first = next(i for i, t in enumerate(mds) if t.startswith("**Held-out check**"))
    assert first <= 2, "the held-out check is not at the top of the report"
    line = mds[first].replace("**", "")
    for s in says: assert s in line, f"{s!r} not in {line!r}"

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

def fake_eval(root, shift, prompt=None, seed=0, videos=12, frames=3):
    "eval/test and eval/frangi folders as `eval` writes them: metrics.json and per_image.csv, the model's Dice = Frangi's + `shift` + noise."
    r = np.random.default_rng(seed)
    names = [(f"video-{v:012x}_frame_{f:06d}", f"video-{v:012x}") for v in range(videos) for f in range(frames)]
    base = r.uniform(0.5, 0.8, len(names))
    for who, dice in (("test", base + shift + r.normal(0, 0.02, len(names))), ("frangi", base)):
        (root/who).mkdir(parents=True)
        rows = "".join(f"{n},{v},{d!r},{d * 0.8!r},{d!r}\n" for (n, v), d in zip(names, map(float, dice)))
        (root/who/"per_image.csv").write_text("name,video,dice,iou,cldice\n" + rows)
        m = dict(split="test", n_images=len(names), n_videos=videos, threshold=0.5, threshold_split="val", threshold_source="val curve",
                 model_spec="exported" if who == "test" else "frangi", figures={}, leakage="clean", leakage_reason="none",
                 **{k: float(np.mean(dice)) for k in ["dice", "iou", "precision", "recall", "specificity", "accuracy", "cldice"]})
        (root/who/"metrics.json").write_text(json.dumps({**m, **((prompt or {}) if who == "test" else dict(prompt=None))}))

def report_markdown(tmp_path, eval_dir):
    "The markdown outputs of the report rendered on an evaluation folder alone (no training run)."
    nb = tmp_path/"r.ipynb"
    subprocess.run(["papermill", "-k", "python3", "--log-level", "WARNING", str(ROOT/"nbs/report.ipynb"), str(nb), "-p", "work_dir", str(tmp_path/"none"),
                    "-p", "eval_dir", str(eval_dir)], cwd=ROOT, check=True, capture_output=True, env=ENV)
    return ["".join(o.get("data", {}).get("text/markdown", "")) for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", [])]

SIGNIFICANCE = [   # (model − Frangi Dice, prompt fields of the model's metrics.json, verdict, what the prompt line says)
    (0.08, dict(prompt="Please segment the stenosis.", prompt_source="training", prompt_texts={"stenosis": 36}),
     "the model is significantly better", ['"Please segment the stenosis."', "most frequent training text", '"stenosis" (36 objects)']),
    (-0.08, {}, "the model is significantly worse", ["not recorded"]),   # a metrics.json written before prompts were recorded
    (0.0, dict(prompt="Please segment the artery.", prompt_source="--prompt", prompt_texts={}), "no significant difference",
     ['"Please segment the artery."', "given with --prompt"]),
]

@pytest.mark.parametrize("shift,prompt,verdict,prompt_says", SIGNIFICANCE)
def test_report_significance_and_prompt(shift, prompt, verdict, prompt_says, tmp_path):
    "The comparison with the baseline says whether the difference is significant (paired over 12 videos), never a bare 'beats'; the prompt is shown at the top."
    fake_eval(tmp_path/"eval", shift, prompt, seed=2)
    mds = report_markdown(tmp_path, tmp_path/"eval")
    line = next((t for t in mds[:4] if t.startswith("**Prompt**")), None)
    assert line, "no prompt line near the top of the report"
    for s in prompt_says: assert s in line, f"{s!r} not in {line!r}"
    table = next(t for t in mds if t.startswith("**Model against the Frangi baseline**"))
    sentence = re.compile(r"The model's test Dice is \d\.\d{3} (higher|lower) than Frangi's \(95% CI [+−]\d\.\d{3} to [+−]\d\.\d{3} over 12 videos, "
                          r"Wilcoxon p (=|<) [\d.e-]+\): " + re.escape(verdict) + r"\.")
    assert sentence.search(table), f"no significance sentence with {verdict!r} in {table!r}"
    assert f"**{verdict.split()[-1] if 'significantly' in verdict else verdict}**" in table, "the comparison table does not show the verdict"
    steps = mds[-1]
    assert sentence.search(steps), f"Next steps does not state the verdict: {steps!r}"
    assert "beats" not in "".join(mds)

def test_report_video_section(tmp_path):
    "The whole-video table appears when the test evaluation ran with --video, and only then."
    fake_eval(tmp_path/"eval", 0.0)
    assert not any("Whole videos" in t for t in report_markdown(tmp_path, tmp_path/"eval"))
    m = json.loads((tmp_path/"eval/test/metrics.json").read_text())
    mode = lambda d, i: dict(dice=d, dice_min=d - 0.2, area_change=0.01 + i, area_change_gt=0.008, iou_consecutive=0.9 - i, iou_consecutive_gt=0.93, n_videos=4, n_frames=64)
    m["video"] = dict(modes=dict(per_frame=mode(0.70, 0.02), propagate=mode(0.72, 0.0)), key_frames=[0], single_frame_videos=0)
    (tmp_path/"eval/test/metrics.json").write_text(json.dumps(m))
    text = next(t for t in report_markdown(tmp_path/"r2", tmp_path/"eval") if "Whole videos" in t) if (tmp_path/"r2").mkdir() is None else ""
    for s in ["each frame alone", "propagated (SAM 2 memory", "0.7200", "Dice +0.0200, consecutive IoU +0.0200", "consecutive IoU is 0.9300"]:
        assert s in text, f"{s!r} not in the video section: {text[:600]!r}"
