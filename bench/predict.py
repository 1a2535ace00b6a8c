"""Benchmark of `python -m vessel_nb.predict`: frames/s of predicting a generated DICOM run (decoding, display pipeline,
model, masks and the overlay movie written), per model, with the date and versions.

    python bench/predict.py                                    # CPU: the Frangi filter and the tiny preset, 16 frames of 512²
    python bench/predict.py --preset internvl3-8b --device cuda --frames 64 --batch 16 --no-frangi   # one GPU, random weights

Random weights never generate `[SEG]` by themselves, so the neural rows use a fixed answer (`--answer`, one forward
pass as `predict --answer` does; `--decode` lets the model decode instead). Model loading is timed separately: the
frames/s row is the steady state of one run. Prints a markdown table; `--json FILE` also writes the numbers."""
import argparse, json, os, platform, shutil, tempfile, time
from pathlib import Path

import numpy as np
import torch

import vessel_nb
from vessel_nb.dicom import synthetic_run
from vessel_nb.eval import FrangiBaseline, ProbaModel
from vessel_nb.predict import open_input, predict_clip


def neural(preset:str, device:str, answer:str|None):
    "A `ProbaModel` of `preset` (random weights unless tiny) on `device`, and the seconds it took to build."
    from vessel_nb.model import build_model, get_config, VesselPredictor
    t = time.perf_counter()
    m = build_model(get_config(preset), random_weights=preset != "tiny", device=device)
    return ProbaModel(VesselPredictor(m, threshold=0.5, answer=answer)), time.perf_counter() - t


def timed_run(model, src:Path, batch:int, out:Path, device:str) -> tuple[float, int]:
    "Seconds to predict every frame of `src` (masks and movie written) and the frame count."
    clip = open_input(src)[0][0]
    if device.startswith("cuda"): torch.cuda.synchronize()
    t = time.perf_counter()
    rec = predict_clip(model, clip, 0.5, out, batch)
    if device.startswith("cuda"): torch.cuda.synchronize()
    return time.perf_counter() - t, rec["n"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=16); ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4); ap.add_argument("--preset", default="tiny")
    ap.add_argument("--device", default="cpu"); ap.add_argument("--answer", default="Sure, [SEG].")
    ap.add_argument("--decode", action="store_true", help="let the model decode its answer (no fixed answer)")
    ap.add_argument("--no-frangi", action="store_true"); ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores visible)"
    head = dict(date=time.strftime("%Y-%m-%d"), vessel_nb=vessel_nb.__version__, torch=torch.__version__, python=platform.python_version(),
                device=dev, frames=a.frames, size=a.size, batch=a.batch)
    print(" ".join(f"{k}={v}" for k, v in head.items()))
    tmp = Path(tempfile.mkdtemp())
    try:
        src = synthetic_run(tmp/"run.dcm", n=a.frames, size=a.size, bits=16, slope=2.0, intercept=-100)[0]
        rows = []
        if not a.no_frangi:
            fb = FrangiBaseline()
            s, n = timed_run(fb, src, max(a.batch, 2 * fb.workers), tmp/"o_frangi", "cpu")
            rows.append(dict(model=f"frangi ({fb.workers} processes)", load_s=0.0, frames=n, seconds=round(s, 2), fps=round(n / s, 2)))
        model, load = neural(a.preset, a.device, None if a.decode else a.answer)
        timed_run(model, src, a.batch, tmp/"o_warm", a.device)   # warm-up (kernels, allocator)
        s, n = timed_run(model, src, a.batch, tmp/"o_model", a.device)
        rows.append(dict(model=f"{a.preset} ({'random weights, ' if a.preset != 'tiny' else ''}{'decoded' if a.decode else 'fixed answer'})",
                         load_s=round(load, 1), frames=n, seconds=round(s, 2), fps=round(n / s, 2)))
    finally: shutil.rmtree(tmp, ignore_errors=True)
    print("\n| model | load (s) | frames | seconds | frames/s |\n|---|---:|---:|---:|---:|")
    for r in rows: print(f"| {r['model']} | {r['load_s']} | {r['frames']} | {r['seconds']} | {r['fps']} |")
    if a.json: Path(a.json).write_text(json.dumps(dict(head, rows=rows), indent=1))


if __name__ == "__main__": main()
