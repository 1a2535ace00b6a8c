"""How hard is the synthetic data for the Frangi baseline, next to real angiograms?

Prints a table: Frangi Dice (precision, recall, scales, threshold) on the former generator (`vessel_nb.datatools.synth`),
the new one (`vessel_nb.synth.synth`) and the public CIMAT angiograms when they are present — each fitted and
thresholded as `python -m vessel_nb.eval --model frangi` does (scales on training images, threshold on validation,
reported on test). Also: seconds per frame of the new generator at 256² and 512², and the bytes of candidate sample
folders. `--figure` draws synthetic and CIMAT test frames with Frangi's Dice on each into nbs/images/synth/compare.png.

    python bench/synth_frangi.py [--videos 24 --frames 6 --size 256 --seeds 0 1] [--cimat FOLDER] [--figure]
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

import numpy as np

from vessel_nb.dataset import load_split, load_annotations, load_image, entry_mask
from vessel_nb.datatools import split_data, import_masks, synth as old_synth
from vessel_nb.eval import evaluate, EvalConfig, FrangiBaseline, FrangiConfig
from vessel_nb.synth import synth as new_synth, angio_video

ROOT = Path(__file__).resolve().parent.parent


def frangi(data:Path, out:Path) -> dict:
    "Frangi on the test split, as the eval CLI runs it (scales on train, threshold on val)."
    r = evaluate(EvalConfig(model="frangi", data=str(data), split="test", out=str(out), progress=False, cldice=False))
    return dict(dice=r["dice"], dice_std=r["dice_std"], precision=r["precision"], recall=r["recall"], n=r["n_images"],
                threshold=r["threshold"], sigmas=tuple(r["model"]["config"]["sigmas"]))


def synthetic(make, tmp:Path, name:str, a) -> list[dict]:
    "One Frangi result per seed on a folder drawn by `make`."
    rows = []
    for s in a.seeds:
        d = tmp/f"{name}-{s}"
        make(d, a.videos, a.frames, a.size, s)
        split_data(d, val=0.2, test=0.4, seed=0)
        rows.append(dict(data=f"{name} generator, seed {s}", folder=d, **frangi(d, tmp/f"ev-{name}-{s}")))
    return rows


def cimat(src:Path, tmp:Path) -> dict:
    "Frangi on the published CIMAT test set (8 of the 40 training images validate), as scripts/cimat.sh splits it."
    d = tmp/"cimat"
    import_masks(src, d)
    split_data(d, val=0.2, test=0, seed=0, by="video", test_glob="Angios_40_testing_*")
    return dict(data="CIMAT (real, public)", folder=d, **frangi(d, tmp/"ev-cimat"))


def folder_bytes(tmp:Path, videos:int, frames:int, size:int) -> int:
    d = tmp/f"size-{videos}-{frames}-{size}"
    new_synth(d, videos, frames, size, 0)
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file())


def frame_seconds(size:int, frames:int=8) -> float:
    t = time.perf_counter(); angio_video(np.random.default_rng([0, 0]), size, frames)
    return (time.perf_counter() - t) / frames


def _panels(row:dict, k:int=3) -> list:
    "`k` test frames (evenly spaced, one per video where possible) with Frangi's Dice at the run's threshold."
    d = row["folder"]; names = load_split(d, "test")
    by = {e["image"]: e for e in load_annotations(d)}
    pick = [names[i] for i in np.linspace(0, len(names) - 1, k).round().astype(int)]
    fb = FrangiBaseline(FrangiConfig(sigmas=row["sigmas"]), workers=1)
    out = []
    for n in pick:
        img = load_image(d/n, grey=True); gt = entry_mask(by[n], *img.shape) > 0
        pr = fb.predict_proba(img) >= row["threshold"]
        out.append((img, 2 * (pr & gt).sum() / max(pr.sum() + gt.sum(), 1)))
    return out


def figure(rows:list[tuple[str, dict]], path:Path):
    "Rows of test frames with their Frangi Dice; a small PNG."
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(len(rows), 3, figsize=(7.2, 2.5 * len(rows)), dpi=80)
    for r, (label, row) in enumerate(rows):
        for c, (img, dice) in enumerate(_panels(row)):
            ax[r, c].imshow(img, cmap="gray", vmin=0, vmax=255); ax[r, c].set_xticks([]); ax[r, c].set_yticks([])
            ax[r, c].set_title(f"Frangi Dice {dice:.2f}", fontsize=9)
        ax[r, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout(); path.parent.mkdir(parents=True, exist_ok=True); fig.savefig(path, dpi=80); plt.close(fig)
    from PIL import Image
    Image.open(path).convert("L").save(path, optimize=True)   # a grey figure: 8-bit grey PNG, a third of the bytes
    return path.stat().st_size


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=24); p.add_argument("--frames", type=int, default=6)
    p.add_argument("--size", type=int, default=256); p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--cimat", default=str(ROOT.parent/"shared"/"data"/"cimat_angios_80"), help="folder with Angios_40_training/ and Angios_40_testing/")
    p.add_argument("--figure", action="store_true", help="write nbs/images/synth/compare.png")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        rows = synthetic(old_synth, tmp, "former", a) + synthetic(new_synth, tmp, "new", a)
        real = cimat(Path(a.cimat), tmp) if (Path(a.cimat)/"Angios_40_testing").is_dir() else None
        print(f"settings: {a.videos} videos x {a.frames} frames at {a.size}² per seed, split val 0.2 / test 0.4 by video (seed 0); "
              "Frangi scales fitted on <= 64 training images, threshold on val, Dice on test (eval defaults); CIMAT: published 40 test, 8 of 40 training validate\n")
        print("| data | test images | Frangi Dice | precision | recall | scales | threshold |\n|---|---|---|---|---|---|---|")
        for r in rows + ([real] if real else []):
            print(f"| {r['data']} | {r['n']} | {r['dice']:.3f} ± {r['dice_std']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['sigmas']} | {r['threshold']:.2f} |")
        if real is None: print(f"| CIMAT | not found at {a.cimat} | | | | | |")
        for name in ("former", "new"):
            m = [r["dice"] for r in rows if r["data"].startswith(name)]
            print(f"mean over seeds, {name} generator: {np.mean(m):.3f}")
        print(f"\nnew generator, seconds per frame: 256² {frame_seconds(256):.3f}, 512² {frame_seconds(512):.3f}")
        for v, f, s in ((8, 6, 256), (6, 8, 256), (8, 8, 256), (6, 8, 384)):
            print(f"sample folder {v} videos x {f} frames at {s}²: {folder_bytes(tmp, v, f, s) / 1e6:.2f} MB")
        if a.figure:
            fig_rows = [("new generator", rows[len(a.seeds)]), ("former generator", rows[0])] + ([("CIMAT (real)", real)] if real else [])
            n = figure(fig_rows, ROOT/"nbs"/"images"/"synth"/"compare.png")
            print(f"wrote nbs/images/synth/compare.png ({n / 1e3:.0f} kB)")


if __name__ == "__main__": main()
