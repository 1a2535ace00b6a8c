"""Benchmark of the dataset module (not a timed test): `python bench/dataset.py [--n 200] [--entries 10000]`.

Prints a table: samples/s of rasterize + preprocess of 512² frames on one core (target ≥ 200), and the time of
`check` on 10,000 entries (target ≤ 10 s), once with the user's polygons-per-image distribution and once with
every branch of a synthetic tree as a polygon (about 5x more coordinates). Those entries are hard links of 20
frames, which `check` decodes once each; a last row times `check` (which decodes every distinct file by
default) on `--distinct` copies, and with `--no-decode`. It generates its own synthetic frames
in a temporary folder. Rates are given by wall clock and by CPU time of this process (the CPU figure is the
one-core rate when the machine is shared with other work).
"""
import argparse, os, shutil, tempfile, time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import cv2, numpy as np, torch
from vessel_nb import dataset as D
from vessel_nb import datatools as DT
from vessel_nb import core

cv2.setNumThreads(1); torch.set_num_threads(1)


def timed(fn, n):
    "`(calls/s by wall clock, calls/s by this process's CPU time)` of `fn(i)` over `n` calls, after a warm-up call."
    fn(0); t, c = time.perf_counter(), time.process_time()
    for i in range(n): fn(i)
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def frames(d, n_videos=4, frames=5, size=512):
    "A synthetic data folder of 512² frames, split so every frame is in `train`."
    DT.synth(d, videos=n_videos, frames=frames, size=size, seed=0)
    DT.split_data(d, val=0, test=0, seed=0)
    return d


def preprocess_rows(d, n, cfg):
    "samples/s of each stage and of the whole `VesselDataset.__getitem__`."
    ds = D.VesselDataset(d, "train", cfg)
    ents = ds.entries; imgs = [D.load_image(D.image_path(d, e["image"]), grey=True) for e in ents]   # as the dataset reads them
    k = len(ents)
    return [
        ("rasterize all objects at 512² (union)", timed(lambda i: D.entry_mask(ents[i % k], 512, 512), n)),
        ("rasterize targets at mask_size", timed(lambda i: D.object_masks(ds.objects[i % k], 512, 512, cfg.mask_size), n)),
        ("InternVL tiles (448, 1 tile for 512²)", timed(lambda i: D.internvl_tiles(imgs[i % k], cfg), n)),
        ("SAM2 image (1024², ImageNet norm)", timed(lambda i: D.sam_image(imgs[i % k], cfg), n)),
        ("rasterize + preprocess (decoded image)", timed(lambda i: (D.object_masks(ds.objects[i % k], 512, 512, cfg.mask_size),
                                                                   D.internvl_tiles(imgs[i % k], cfg), D.sam_image(imgs[i % k], cfg)), n)),
        ("VesselDataset[i] incl. PNG decode + chat", timed(lambda i: ds[i % len(ds)], n)),
    ]


# polygons per image in the user's own annotations.json (1,219 images; sa2va.md §6)
USER_POLYGONS = {1: 1088, 2: 72, 3: 26, 4: 16, 5: 9, 6: 4, 7: 1, 8: 3}


def check_time(d, entries, heavy=False, copies=False, decode=True):
    """Seconds (wall, CPU) of `check` on `entries` entries: hard links (or `copies`) of 512² synthetic frames, polygons
    per image drawn from the user's distribution (or every branch of the synthetic tree with `heavy`)."""
    src = D.load_annotations(d); big = Path(d)/("copies" if copies else "big"); big.mkdir(exist_ok=True)
    rng = np.random.default_rng(0); ks, ps = list(USER_POLYGONS), np.array(list(USER_POLYGONS.values())) / sum(USER_POLYGONS.values())
    ann = []
    for i in range(entries):
        e = src[i % len(src)]; name = f"Bench Person({i // 20:010d})_1-1_1_{i // 20:08X}_frame_{i % 20:06d}.png"
        if not (big/name).exists(): (shutil.copyfile if copies else os.link)(D.image_path(d, e["image"]), big/name)
        polys = e["mask"] if heavy else [e["mask"][j % len(e["mask"])] for j in range(rng.choice(ks, p=ps))]
        ann.append({**e, "image": name, "mask": polys})
    core.write_json(big/"annotations.json", ann)
    t, c = time.perf_counter(), time.process_time(); r = D.check(big, decode=decode); dt, dc = time.perf_counter() - t, time.process_time() - c
    assert r.counts() == {}, r.counts()
    return dt, dc, sum(len(e["mask"]) for e in ann), sum(len(p) for e in ann for p in e["mask"])


def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--n", type=int, default=200); ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--distinct", type=int, default=1_000, help="distinct image files for the decoding row")
    a = ap.parse_args()
    cfg = D.DataConfig()   # the real Sa2VA sizes: 448 tiles, SAM2 1024², masks 256²
    with tempfile.TemporaryDirectory() as d:
        rows = preprocess_rows(frames(d), a.n, cfg)
        checks = [(k, *check_time(d, a.entries, k == "heavy")) for k in ("user-like", "heavy")]
        distinct = [(dec, *check_time(d, a.distinct, copies=True, decode=dec)) for dec in (True, False)]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_', 'default')}")
    print(f"| stage (512² frames, 1 core, {a.n} samples) | samples/s (wall) | samples/s (CPU time) | target |\n|---|---:|---:|---:|")
    for name, (w, c) in rows: print(f"| {name} | {w:,.0f} | {c:,.0f} | {'≥ 200' if name.startswith('rasterize + preprocess') else ''} |")
    print(f"\n| `check` on {a.entries:,} entries (512² PNG files) | polygons | coordinates | wall | CPU time | target |\n|---|---:|---:|---:|---:|---:|")
    for k, dt, dc, npoly, ncoord in checks:
        print(f"| {k} polygons per image | {npoly:,} | {ncoord/1e6:.1f} M | {dt:.2f} s | {dc:.2f} s | ≤ 10 s |")
    print(f"\n| `check` on {a.distinct:,} distinct 512² PNG files | wall | CPU time (all threads) | per 10,000 files (wall) |\n|---|---:|---:|---:|")
    for dec, dt, dc, _, _ in distinct:
        print(f"| {'decoding every image (default)' if dec else '--no-decode'} | {dt:.2f} s | {dc:.2f} s | {dt * 10_000 / a.distinct:.1f} s |")


if __name__ == "__main__": main()
