"""Whole-video benchmark: frames/s and peak memory of `VesselPredictor.predict_video` for runs of different lengths.

    python bench/video_gpu.py --preset internvl3-8b --frames 16 128 512 --size 512          # one GPU, random weights
    python bench/video_gpu.py --preset internvl3-8b --frames 16 128 512 --compile           # SAM2 encoder compiled
    python bench/video_gpu.py --preset tiny --device cpu --frames 16 64 --size 512           # CPU smoke run

Random weights never generate `[SEG]`, so the predictor gets the fixed answer "Sure, [SEG]." (one language-model
pass on the key frame, as a real prediction whose answer is that). Frames are synthetic angiograms (`angio_video`,
16 distinct frames, back and forth), produced lazily by a generator: nothing holds the run. Every prediction is a
probability map at the frame's size on the host, as a user receives it. Memory: on a GPU the peak allocated
memory of each run (`torch.cuda.max_memory_allocated`, reset before each run); on a CPU the growth of the
process's peak resident memory during the run. Prints a markdown table; `--json FILE` also writes the numbers."""
import argparse, itertools, json, platform, resource, sys, time
import numpy as np, torch
from vessel_nb.model import VesselPredictor, build_model, compile_frozen, merge_for_inference
from vessel_nb.synth import angio_video


def frames(base:list, n:int):
    "A generator of `n` frames going back and forth through `base` (no jump at the turns)."
    k = len(base)
    return (base[i % k] if (i // k) % 2 == 0 else base[k - 1 - i % k] for i in range(n))


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize(dev)


def run(pred, base:list, n:int, mode:str, dev, prefetch:int) -> dict:
    "Frames/s and peak memory of one run of `n` frames."
    if dev.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sync(dev); t = time.perf_counter(); first = None; area = []
    for i, p in enumerate(pred.predict_video(frames(base, n), mode=mode, prefetch=prefetch)):
        if first is None: first = time.perf_counter() - t
        area.append(float(p.mask.mean()))
    sync(dev); s = time.perf_counter() - t
    assert len(area) == n, (len(area), n)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 2**20
    return dict(mode=mode, frames=n, seconds=round(s, 3), fps=round(n / s, 2), first_frame_s=round(first, 3), peak_gib=round(peak, 3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="internvl3-8b"); ap.add_argument("--frames", type=int, nargs="+", default=[16, 128, 512])
    ap.add_argument("--size", type=int, default=512, help="frame side (pixels)")
    ap.add_argument("--modes", nargs="+", default=["propagate", "per_frame"], choices=["propagate", "per_frame"])
    ap.add_argument("--per-frame-max", type=int, default=128, help="skip per_frame runs longer than this (they scale linearly)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="compile the SAM2 image encoder (torch.compile)")
    ap.add_argument("--prefetch", type=int, default=8); ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    t = time.perf_counter()
    model = merge_for_inference(build_model(a.preset, random_weights=a.preset != "tiny", device=dev))
    if a.compile: compile_frozen(model)
    pred = VesselPredictor(model, answer="Sure, [SEG].")
    build_s = time.perf_counter() - t
    base = [im for im, _ in angio_video(np.random.default_rng(0), a.size, 16)]             # 16 synthetic frames
    run(pred, base, 8, "propagate", dev, a.prefetch)                                     # warm-up (and compilation)
    rows = [run(pred, base, n, m, dev, a.prefetch) for m, n in itertools.product(a.modes, a.frames)
            if m == "propagate" or n <= a.per_frame_max]
    env = dict(date=time.strftime("%Y-%m-%d"), device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
               torch=torch.__version__, python=platform.python_version(), preset=a.preset, sam2=model.cfg.sam2, size=a.size,
               compiled=a.compile, dtype=str(model.compute_dtype).replace("torch.", ""), threads=torch.get_num_threads(), build_s=round(build_s, 1))
    print(" ".join(f"{k}={v}" for k, v in env.items()))
    mem = "peak GPU memory (GiB)" if dev.type == "cuda" else "peak RSS growth (GiB)"
    print(f"\n| mode | frames | frames/s | first frame (s) | {mem} |\n|---|---:|---:|---:|---:|")
    for r in rows: print(f"| {r['mode']} | {r['frames']} | {r['fps']:.2f} | {r['first_frame_s']:.3f} | {r['peak_gib']:.2f} |")
    prop = [r for r in rows if r["mode"] == "propagate"]
    if len(prop) > 1 and dev.type == "cuda":
        g = prop[-1]["peak_gib"] / prop[0]["peak_gib"] - 1
        print(f"\npropagate: peak memory {prop[-1]['frames']} vs {prop[0]['frames']} frames: {100 * g:+.1f}% ({'within' if abs(g) <= 0.10 else 'NOT within'} 10%)")
    if a.json: open(a.json, "w").write(json.dumps(dict(env=env, rows=rows), indent=1) + "\n")


if __name__ == "__main__": sys.exit(main())
