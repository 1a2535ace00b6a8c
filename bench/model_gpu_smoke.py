"""GPU smoke test of `vessel_nb.model`: one bf16 forward+backward of the real architecture on one 512² frame.

    python bench/model_gpu_smoke.py                       # internvl3-8b + sam2.1 hiera-L, random weights, first GPU
    python bench/model_gpu_smoke.py --preset tiny --device cpu --steps 2   # the same path on a CPU (tested in CI)

Builds the model with `random_weights=True` (no weight files needed) and the Sa2VA training policy of the preset,
runs `--steps` timed training steps (forward + backward + AdamW) after one warm-up step, and prints the parameter
counts (total and trainable, by group), the peak memory and the step time.
"""
import argparse, platform, resource, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cv2, numpy as np, torch

from vessel_nb.dataset import chat_segments, internvl_tiles, sam_image
from vessel_nb.model import Collator, build_model, get_config


def frame(size=512, seed=0):
    "A synthetic grey angiogram-like frame `(size, size)` and its vessel mask at the same size."
    rng = np.random.default_rng(seed)
    img = (150 + 20 * rng.standard_normal((size, size))).clip(0, 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(6):
        p, q = rng.integers(0, size, 2), rng.integers(0, size, 2)
        w = int(rng.integers(2, 8))
        cv2.line(img, tuple(map(int, p)), tuple(map(int, q)), 60, w); cv2.line(mask, tuple(map(int, p)), tuple(map(int, q)), 1, w)
    return img, mask


def sample(cfg, size):
    "One training sample in the dataset's format, preprocessed with the dataset's own functions."
    img, mask = frame(size)
    rgb, d = np.repeat(img[..., None], 3, 2), cfg.data
    m = cv2.resize(mask, (d.mask_size, d.mask_size), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    return dict(pixel_values=torch.from_numpy(internvl_tiles(rgb, d)), sam_image=torch.from_numpy(sam_image(rgb, d)),
                masks=torch.from_numpy(m)[None], segments=chat_segments(["blood vessel"], d), image="synthetic.png",
                video="video-0", size=(size, size))


def to(batch, device):
    return {k: (v.to(device) if torch.is_tensor(v) else [x.to(device) for x in v] if isinstance(v, list) else v) for k, v in batch.items()}


def peak_memory_gb(device):
    if device.type == "cuda": return torch.cuda.max_memory_allocated(device) / 2**30, "GPU (max allocated)"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "CPU process (max RSS)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="internvl3-8b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=512, help="frame side in pixels")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up step")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--seg-rows", default="tokens", choices=["tokens", "full"])
    ap.add_argument("--lora-r", type=int, default=None)
    a = ap.parse_args()
    device = torch.device(a.device)
    over = dict(seg_rows=a.seg_rows, **({"lora_r": a.lora_r, "lora_alpha": 2 * a.lora_r} if a.lora_r else {}))
    if a.preset == "tiny": over["train"] = ["projector", "lora", "seg_token", "seg_head", "sam_decoder"]   # the Sa2VA policy on tiny dims
    cfg = get_config(a.preset, **over)
    print(f"torch {torch.__version__} | {platform.python_version()} | device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    t0 = time.perf_counter()
    model = build_model(cfg, random_weights=True, device=device)
    if a.gradient_checkpointing: model.gradient_checkpointing_enable()
    print(f"built {a.preset} + {cfg.sam2} (random weights) in {time.perf_counter() - t0:.1f} s; compute dtype {model.compute_dtype}; "
          f"train groups {cfg.train}; seg_rows {cfg.seg_rows}; LoRA r {cfg.lora_r}")

    groups = model.groups()
    print(f"\n{'group':<12} {'parameters':>16} {'trainable':>16}")
    for g, (n, t) in sorted(groups.items(), key=lambda x: -x[1][0]): print(f"{g:<12} {n:>16,} {t:>16,}")
    tot, tr = sum(n for n, _ in groups.values()), sum(t for _, t in groups.values())
    print(f"{'total':<12} {tot:>16,} {tr:>16,}  ({100 * tr / tot:.2f}% trainable)")

    batch = to(Collator(model.tokenizer, cfg)([sample(cfg, a.size)]), device)
    print(f"\none {a.size}x{a.size} frame: {batch['pixel_values'].shape[0]} tile(s), {batch['input_ids'].shape[1]} tokens, "
          f"SAM2 input {tuple(batch['sam_images'].shape[-2:])}, mask {tuple(batch['masks'][0].shape[-2:])}")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(a.steps + 1):
        if device.type == "cuda": torch.cuda.synchronize(device)
        t = time.perf_counter()
        out = model(batch); out["loss"].backward(); opt.step(); opt.zero_grad(set_to_none=True)
        if device.type == "cuda": torch.cuda.synchronize(device)
        if i: times.append(time.perf_counter() - t)
        print(f"step {i}{' (warm-up)' if not i else ''}: " + ", ".join(f"{k} {v.item():.4f}" for k, v in out.items()))
        if not torch.isfinite(out["loss"]): sys.exit("non-finite loss")
    mem, where = peak_memory_gb(device)
    print(f"\nstep time (forward+backward+AdamW, median of {len(times)}): {statistics.median(times):.3f} s")
    print(f"peak memory {where}: {mem:.2f} GiB")


if __name__ == "__main__": main()
