"""Profile one training step and one batched prediction of a preset (torch.profiler), print the top operators.

    python bench/profile_gpu.py --preset internvl3-8b --batch-size 8     # on a GPU, random weights
    python bench/profile_gpu.py --preset tiny --batch-size 2             # CPU smoke run

Prints, for the training step and for inference, the operators that take the most device time (self time) and the
host-side total, so the largest items can be fixed first (issue 8, target 6)."""
import argparse, random, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, torch
from torch.profiler import profile, ProfilerActivity, record_function
from vessel_nb.model import build_model, get_config, Collator, VesselPredictor, compile_frozen
from vessel_nb.dataset import chat_segments

def sample(cfg, seed):
    d, g = cfg.data, torch.Generator().manual_seed(seed)
    m = torch.zeros(1, d.mask_size, d.mask_size); m[0, d.mask_size // 4:d.mask_size // 2, d.mask_size // 3:d.mask_size // 2] = 1
    return dict(pixel_values=torch.randn(1, 3, d.tile_size, d.tile_size, generator=g), sam_image=torch.randn(3, d.sam_size, d.sam_size, generator=g),
                masks=m, segments=chat_segments(["blood vessel"], d, random.Random(seed)), image="x.png", video="v", size=(512, 512))

def to(x, dev): return {k: (v.to(dev) if torch.is_tensor(v) else [t.to(dev) for t in v] if isinstance(v, list) else v) for k, v in x.items()}

def main():
    p = argparse.ArgumentParser(); p.add_argument("--preset", default="internvl3-8b"); p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--compile", choices=["none", "sam", "all"], default="none", help="compile_frozen: SAM2 encoder, or it and the LLM layers")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--no-profile", action="store_true", help="only time the step (median of 10)"); a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = get_config(a.preset); model = build_model(cfg, random_weights=a.preset != "tiny", device=dev)
    batch = to(Collator(model.tokenizer, cfg)([sample(cfg, i) for i in range(a.batch_size)]), dev)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-5, fused=dev.type == "cuda")
    def step():
        out = model(batch); out["loss"].backward(); torch.nn.utils.clip_grad_norm_([q for q in model.parameters() if q.requires_grad], 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
    if a.gradient_checkpointing: model.gradient_checkpointing_enable()
    if a.compile != "none": compile_frozen(model, llm_layers=a.compile == "all")
    t = time.perf_counter()
    for _ in range(3): step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync(); print(f"warm-up (3 steps, compile {a.compile}): {time.perf_counter() - t:.1f} s")
    ts = []
    for _ in range(10):
        sync(); t = time.perf_counter(); step(); sync(); ts.append(time.perf_counter() - t)
    print(f"## {a.preset} batch {a.batch_size}, compile {a.compile}, gradient checkpointing {a.gradient_checkpointing}: median step {sorted(ts)[5]:.3f} s "
          f"({a.batch_size / sorted(ts)[5]:.2f} samples/s), peak {torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else 0:.1f} GiB")
    if a.no_profile: return
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    sort = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    if dev.type == "cuda": torch.cuda.synchronize()
    t = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(2):
            with record_function("train_step"): step()
        if dev.type == "cuda": torch.cuda.synchronize()
    print(f"\n## training step, batch {a.batch_size}: {(time.perf_counter() - t) / 2:.3f} s/step (under the profiler)")
    print(prof.key_averages().table(sort_by=sort, row_limit=a.rows, max_name_column_width=60))
    pred = VesselPredictor(model, max_new_tokens=6)
    imgs = [np.random.default_rng(i).integers(0, 255, (512, 512), dtype=np.uint8) for i in range(a.batch_size)]
    pred.predict_batch(imgs)
    with profile(activities=acts) as prof:
        with record_function("predict_batch"): pred.predict_batch(imgs)
    print(f"\n## predict_batch, batch {a.batch_size}")
    print(prof.key_averages().table(sort_by=sort, row_limit=a.rows, max_name_column_width=60))

if __name__ == "__main__": main()
