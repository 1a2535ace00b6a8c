"""Does the Frangi baseline keep up with training? On synthetic 512² frames (default 1,000: 100 videos of 10 frames, split
50/20/30 % train/val/test), time `python -m vessel_nb.eval --model frangi --split test` (scales fitted on a bounded sample
of training images, threshold on val, then test) against a short tiny training with the real CLI
(`python -m vessel_nb.train --config configs/tiny-sample.yaml --max-iters 300` on the same data).
Target: the Frangi fit + test evaluation takes less time than the training.

Run: `python bench/frangi_vs_train.py [--frames 1000] [--iters 300] [--all-train]` (`--all-train` adds the former
behaviour, scales fitted on every training image). Prints a table; writes the raw numbers to `--json` (default
`bench/results/<date>_cpu_frangi_vs_train.json`). The data lives in a temporary folder, removed at the end."""
import argparse, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")


def sh(*args) -> float:
    "Run a command from the repository root; its wall time in seconds (output kept for the log, error on failure)."
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True)
    if r.returncode: sys.exit(f"error: {' '.join(map(str, args))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t


def versions() -> dict:
    import numpy, scipy, skimage, torch
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return dict(python=platform.python_version(), torch=torch.__version__, numpy=numpy.__version__, scipy=scipy.__version__,
                skimage=skimage.__version__, commit=sha, cpu=cpu, cores=os.cpu_count())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=1000); ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=300); ap.add_argument("--all-train", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    date = time.strftime("%Y-%m-%d")
    out = Path(a.json or ROOT/"bench"/"results"/f"{date}_cpu_frangi_vs_train.json")
    tmp = Path(tempfile.mkdtemp(prefix="bench_frangi_train_")); d = tmp/"data"
    res = dict(date=date, machine=versions(), frames=a.frames, size=a.size, iters=a.iters, load_before=os.getloadavg()[0], rows={})
    try:
        res["rows"]["synth + split"] = sh("-m", "vessel_nb.dataset", "synth", d, "--videos", a.frames // 10, "--frames", 10, "--size", a.size, "--seed", 0)
        res["rows"]["synth + split"] += sh("-m", "vessel_nb.dataset", "split", d, "--val", 0.2, "--test", 0.3)
        res["splits"] = {k: len(v) for k, v in json.loads((d/"splits.json").read_text()).items() if isinstance(v, list)}
        res["rows"]["frangi"] = sh("-m", "vessel_nb.eval", "--model", "frangi", "--data", d, "--split", "test", "--out", tmp/"frangi", "--no-progress")
        m = json.loads((tmp/"frangi"/"metrics.json").read_text())
        res["frangi"] = dict(dice=m["dice"], fit_images=m["model"]["fit_images"], fit_of=m["model"].get("fit_of"), threshold=m["threshold"])
        if a.all_train:
            res["rows"]["frangi_all_train"] = sh("-m", "vessel_nb.eval", "--model", "frangi", "--data", d, "--split", "test", "--out", tmp/"frangi_all",
                                                 "--no-progress", "--fit-images", 100_000)
            res["frangi_all_train"] = dict(dice=json.loads((tmp/"frangi_all"/"metrics.json").read_text())["dice"])
        res["rows"]["train"] = sh("-m", "vessel_nb.train", "--config", "configs/tiny-sample.yaml", "--data", d, "--work-dir", tmp/"work",
                                  "--max-iters", a.iters)
        res["load_after"] = os.getloadavg()[0]
    finally: shutil.rmtree(tmp, ignore_errors=True)
    r, s, mc = res["rows"], res["splits"], res["machine"]
    print(f"{date}, {mc['cores']} cores ({mc['cpu']}), Python {mc['python']}, torch {mc['torch']}, numpy {mc['numpy']}, "
          f"scipy {mc['scipy']}, scikit-image {mc['skimage']}, commit {mc['commit']}; load {res['load_before']:.2f} -> {res['load_after']:.2f}")
    print(f"data: {a.frames} synthetic frames of {a.size}² ({s.get('train')} train / {s.get('val')} val / {s.get('test')} test), made in {r['synth + split']:.1f} s\n")
    print("| run | wall time | result |\n|---|---|---|")
    f = res["frangi"]
    print(f"| `eval --model frangi --split test`: fit on {f['fit_images']} of {f['fit_of'] or s.get('train')} training frames, threshold on {s.get('val')} val, "
          f"{s.get('test')} test | {r['frangi']:.1f} s | Dice {f['dice']:.4f} |")
    if "frangi_all_train" in r:
        print(f"| the same, fitted on all {s.get('train')} training frames (`--fit-images 100000`, the former default) | {r['frangi_all_train']:.1f} s | "
              f"Dice {res['frangi_all_train']['dice']:.4f} |")
    print(f"| `python -m vessel_nb.train --config configs/tiny-sample.yaml --max-iters {a.iters}` (validation every 100) | {r['train']:.1f} s | — |")
    ok = r["frangi"] < r["train"]
    print(f"\ntarget Frangi fit + test < training: {'met' if ok else 'NOT met'} ({r['frangi']:.1f} s vs {r['train']:.1f} s, ratio {r['frangi'] / r['train']:.2f})")
    res["target_met"] = ok
    out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"raw numbers -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__": main()
