"""Benchmark of `vessel_nb.eval`: metrics on 1,000 masks of 512² on CPU (target <= 2 s), clDice separately,
the threshold curve, and inference frames/s (Frangi baseline; the tiny neural preset when `vessel_nb.model` exists).

Run: `python bench/eval.py [--n 1000] [--size 512] [--frames 4]`. Prints one line per row; no files written."""
import argparse, os, time
import numpy as np

from vessel_nb.eval import SegMetrics, ThresholdCurve, FrangiBaseline, binarize, confusion_counts, skeleton_counts


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
    a = ap.parse_args()
    print(f"cpu cores visible: {os.cpu_count()}, numpy {np.__version__}")
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
