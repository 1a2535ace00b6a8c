"""Benchmark of `vessel_nb.metrics` and `vessel_nb.eval`: metrics on 1,000 masks of 512² on CPU (target <= 2 s), clDice separately,
the threshold curve, inference frames/s (Frangi baseline; the tiny neural preset when `vessel_nb.model` exists),
and the Frangi baseline end to end (`--frangi`: a table of frames/s per number of worker processes, and a whole
`eval --model frangi` run on a synthetic data folder of 200 training + 300 test frames; target >= 5 frames/s on 2 cores).

Run: `python bench/eval.py [--n 1000] [--size 512] [--frames 4]`, or `python bench/eval.py --frangi [--e2e-videos 50]`.
Prints one line per row; only `--frangi` writes (a temporary folder, removed at the end)."""
import argparse, os, shutil, tempfile, time
from pathlib import Path
import numpy as np

from vessel_nb.metrics import SegMetrics, ThresholdCurve, binarize, confusion_counts, skeleton_counts
from vessel_nb.eval import FrangiBaseline


def vessel_like_masks(n:int, size:int, seed:int=0) -> tuple[np.ndarray, np.ndarray]:
    "Pairs of thin-structure masks (GT, and a perturbed prediction), `(n, size, size)` bool."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    gt, pred = np.zeros((n, size, size), bool), np.zeros((n, size, size), bool)
    base = [np.abs(np.sin(xx / rng.uniform(20, 60) + rng.uniform(0, 6)) * size / 3 + size / 3 - yy) < rng.uniform(2, 6) for _ in range(8)]
    for i in range(n):  # mix a few precomputed curves per image, shift the prediction a little
        gt[i] = base[i % 8] | base[(i * 3 + 1) % 8]
        pred[i] = np.roll(gt[i], int(rng.integers(-2, 3)), axis=1) ^ (rng.random((size, size)) < 0.002)
    return pred, gt


def timed(f, *a, **k):
    t = time.perf_counter(); r = f(*a, **k); return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000); ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cldice-n", type=int, default=1000, help="masks for the clDice row")
    ap.add_argument("--frames", type=int, default=4, help="frames for the inference rows")
    ap.add_argument("--frangi", action="store_true", help="only the Frangi table and the end-to-end eval run")
    ap.add_argument("--e2e-videos", type=int, default=50, help="videos of 10 frames for the end-to-end run (60%% test, 40%% train)")
    a = ap.parse_args()
    print(f"cpu cores visible: {os.cpu_count()}, numpy {np.__version__}")
    if a.frangi: return frangi_table(a.size, a.e2e_videos)
    pred, gt = vessel_like_masks(a.n, a.size)
    _, t = timed(lambda: SegMetrics(cldice=False).update(pred, gt).aggregate())
    print(f"metrics (6 pixel metrics, per image + aggregate) {a.n} masks {a.size}²: {t:.2f} s  (target <= 2 s)  -> {a.n / t:,.0f} masks/s")
    _, t = timed(confusion_counts, pred, gt)
    print(f"  of which confusion counts: {t:.2f} s")
    m = min(a.cldice_n, a.n)
    _, t = timed(skeleton_counts, pred[:m], gt[:m])
    print(f"clDice skeleton counts {m} mask pairs {a.size}²: {t:.2f} s  -> {t / m * 1e3:.1f} ms/pair")
    rng = np.random.default_rng(1)
    probs = np.clip(gt[:100] * 0.6 + rng.random((100, a.size, a.size), dtype=np.float32) * 0.4, 0, 1).astype(np.float32)
    _, t = timed(lambda: ThresholdCurve("val", 100).update(probs, gt[:100]).table())
    print(f"threshold curve (101 thresholds) 100 prob maps {a.size}²: {t:.2f} s  -> {t * 10:.1f} ms/map")
    img = (200 - 100 * gt[0]).astype(np.uint8)
    fr = FrangiBaseline()
    _, t = timed(lambda: [fr.predict_proba(img) for _ in range(a.frames)])
    print(f"inference Frangi baseline {a.size}² on CPU: {a.frames / t:.2f} frames/s")
    tiny_model_row(a.frames, a.size)


def frangi_table(size:int, videos:int):
    "Frames/s of the Frangi baseline per number of processes, then one whole `eval --model frangi` run."
    from skimage.filters import frangi
    from vessel_nb.dataset import load_split, load_image, image_path
    from vessel_nb.datatools import synth, split_data
    from vessel_nb.eval import EvalConfig, evaluate, to_gray
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    try:
        synth(tmp/"data", videos=videos, frames=10, size=size, seed=0); split_data(tmp/"data", val=0, test=0.6)
        imgs = [load_image(image_path(tmp/"data", n)) for n in load_split(tmp/"data", "test")[:16]]
        _, t = timed(lambda: [frangi(to_gray(im), sigmas=(3, 4, 5, 6)) for im in imgs[:4]])
        print(f"| Frangi {size}² | skimage.filters.frangi, float64, 1 process (before) | {4 / t:.2f} frames/s |")
        for w in sorted({1, 2, os.cpu_count() or 1}):
            fb = FrangiBaseline(workers=w); fb.predict_proba_batch(imgs[:w])  # start the pool
            _, t = timed(fb.predict_proba_batch, imgs)
            print(f"| Frangi {size}² | predict_proba_batch, {w} process{'es' * (w > 1)} | {len(imgs) / t:.2f} frames/s |")
        n_train, n_test = (len(load_split(tmp/"data", s)) for s in ("train", "test"))
        res, t = timed(evaluate, EvalConfig("frangi", str(tmp/"data"), "test", str(tmp/"out"), progress=False))
        print(f"| eval --model frangi | {n_train} train (scales fitted on {res['model']['fit_images']}, threshold on all) + {n_test} test frames of {size}², "
              f"{os.cpu_count()} cores, clDice on | {t:.1f} s = {(n_train + n_test) / t:.2f} frames/s (Dice {res['dice']:.4f}) |")
    finally: shutil.rmtree(tmp, ignore_errors=True)


def tiny_model_row(frames:int, size:int):
    try:
        import vessel_nb.model as vm
    except Exception as e:  # the model module may not exist yet
        print(f"inference tiny preset: skipped ({type(e).__name__}: {e}; vessel_nb.model is not importable)"); return
    from vessel_nb.eval import ProbaModel
    import torch
    torch.manual_seed(0)
    model = vm.build_model(vm.get_config("tiny"), device="cpu")
    pm = ProbaModel(vm.VesselPredictor(model))
    img = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    pm.predict_proba(img)  # warm-up
    _, t = timed(lambda: [pm.predict_proba(img) for _ in range(frames)])
    print(f"inference tiny preset {size}² on CPU ({torch.get_num_threads()} threads): {frames / t:.2f} frames/s")


if __name__ == "__main__": main()
