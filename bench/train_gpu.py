"""Training-step throughput of a `vessel_nb` preset: the real training step of `vessel_nb.train` on synthetic batches.

    python bench/train_gpu.py --preset internvl3-8b --random-weights --batch-size 1 4 8 --tiles 1 --steps 20
    python bench/train_gpu.py --preset internvl3-8b --random-weights --batch-size 4 --tiles 5 --gradient-checkpointing
    accelerate launch --num_processes 4 bench/train_gpu.py --preset internvl3-8b --random-weights --batch-size 8
    python bench/train_gpu.py --preset tiny --batch-size 1 2 --steps 3      # CPU smoke run

One row per (tiles, batch): seconds per step, samples/s and tokens/s (all processes), model TFLOP/s and peak GiB.
Model FLOPs per sample (issue 8): 4 · P_llm · tokens (forward + input-gradient backward through the frozen base,
recomputation not counted; P_llm = language-model parameters without the input embedding table, lm_head included)
+ 2 · P_vision · (patches + 1) · tiles (vision tower forward) + the SAM2 image-encoder forward at its input size
(counted once with torch's FlopCounterMode; ~1.82 TFLOP for Hiera-L at 1024²).
"""
import argparse, json, random, sys, time
import torch

def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="internvl3-8b")
    ap.add_argument("--random-weights", action="store_true", help="real-size architecture without weights")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[1], help="per process; one row each")
    ap.add_argument("--tiles", type=int, nargs="+", default=[1], help="InternVL tiles per sample (1 = a 512² frame, 5 = 2×2 + thumbnail)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--objects", type=int, default=1, help="[SEG] objects per sample")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--fsdp", action="store_true")
    ap.add_argument("--compile", action="store_true", help="compile_frozen: the SAM2 encoder and each LLM layer")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return ap.parse_args()

def fake_sample(cfg, tiles:int, objects:int, seed:int) -> dict:
    "A dataset-contract sample with random pixels and square-ish targets."
    from vessel_nb.dataset import chat_segments
    d, g = cfg.data, torch.Generator().manual_seed(seed)
    m = torch.zeros(objects, d.mask_size, d.mask_size)
    for k in range(objects): m[k, d.mask_size // 8 * (k + 1):d.mask_size // 8 * (k + 3), d.mask_size // 4:d.mask_size // 2] = 1
    return dict(pixel_values=torch.randn(tiles, 3, d.tile_size, d.tile_size, generator=g),   # (T, 3, t, t)
                sam_image=torch.randn(3, d.sam_size, d.sam_size, generator=g),               # (3, S, S)
                masks=m, segments=chat_segments(["blood vessel"] * objects, d, random.Random(seed)),
                image=f"bench_{seed}.png", video="video-bench", size=(512, 512))

def n_params(module, skip=()) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not any(s in n for s in skip))

def sam_encoder_flops(model, device) -> float:
    "FLOPs of one SAM2 image-encoder forward at the model's SAM2 input size."
    from torch.utils.flop_counter import FlopCounterMode
    S = model.cfg.data.sam_size
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.sam.image_encoder(torch.zeros(1, 3, S, S, device=device, dtype=next(model.sam.parameters()).dtype))
    return float(fc.get_total_flops())

def flops_per_sample(model, tokens:float, tiles:int, sam_flops:float) -> float:
    lm = model.core.model.language_model
    p_llm = n_params(lm, skip=("embed_tokens",)) + n_params(model.core.lm_head)
    d = model.cfg.data
    return 4 * p_llm * tokens + 2 * n_params(model.core.model.vision_tower) * ((d.tile_size // d.patch_size) ** 2 + 1) * tiles + sam_flops

def main():
    a = parse()
    from vessel_nb.model import get_config, build_model, Collator
    from vessel_nb.train import TrainConfig, Run, Plan, make_accelerator, setup, train_step, to_device
    cfg = TrainConfig(preset=a.preset, max_iters=10**6, lr=1e-5, warmup=0, fsdp=a.fsdp, gradient_checkpointing=a.gradient_checkpointing,
                      compile=a.compile)
    acc = make_accelerator(cfg)
    mcfg = get_config(a.preset)
    t0 = time.time(); model = build_model(mcfg, random_weights=a.random_weights, device=acc.device)
    acc.print(f"built {a.preset} in {time.time() - t0:.1f} s on {acc.device} × {acc.num_processes}: "
              f"{n_params(model) / 1e9:.3f} B parameters, {sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6:.1f} M trainable")
    sam_flops = sam_encoder_flops(model, acc.device)
    coll = Collator(model.tokenizer, mcfg)
    pm, opt = setup(cfg, acc, model)   # the training setup itself: fp32 master weights, memory options, DDP/FSDP
    run = Run(cfg, acc, Plan(1, acc.num_processes, 1, 10**6, 10**6, 1.0), parts=None, model=pm, opt=opt,
              trainable_keys=[], training_set=None)
    cuda, rows = torch.cuda.is_available(), []
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for tiles in a.tiles:
        for bs in a.batch_size:
            batch = to_device(coll([fake_sample(mcfg, tiles, a.objects, acc.process_index * 1000 + i) for i in range(bs)]), acc.device)
            tokens = batch["attention_mask"].sum().item() / bs
            if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
            try:
                for i in range(a.warmup): train_step(run, i, batch)
                sync(); t = time.perf_counter()
                for i in range(a.steps): train_step(run, i, batch)
                sync(); dt = (time.perf_counter() - t) / a.steps
            except torch.OutOfMemoryError:
                rows.append(dict(tiles=tiles, batch=bs, oom=True)); acc.print(f"tiles {tiles} batch {bs}: out of memory")
                opt.zero_grad(set_to_none=True); continue
            sps = bs * acc.num_processes / dt
            rows.append(dict(tiles=tiles, batch=bs, processes=acc.num_processes, tokens_per_sample=tokens, s_per_step=dt,
                             samples_per_s=sps, tokens_per_s=sps * tokens,
                             tflops_per_sample=flops_per_sample(model, tokens, tiles, sam_flops) / 1e12,
                             model_tflop_s=flops_per_sample(model, tokens, tiles, sam_flops) * sps / 1e12 / acc.num_processes,
                             peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None))
    if not acc.is_main_process: return
    dev = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"\n{a.preset}{' (random weights)' if a.random_weights else ''} on {acc.num_processes} × {dev}, torch {torch.__version__}, "
          f"gradient checkpointing {a.gradient_checkpointing}, FSDP {a.fsdp}; SAM2 encoder {sam_flops / 1e9:.4g} GFLOP/image")
    print("| tiles | batch/process | tokens/sample | s/step | samples/s | tokens/s | model TFLOP/s per GPU | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("oom"): print(f"| {r['tiles']} | {r['batch']} | | OOM | | | | |"); continue
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(f"| {r['tiles']} | {r['batch']} | {r['tokens_per_sample']:.0f} | {r['s_per_step']:.3f} | {r['samples_per_s']:.2f} | "
              f"{r['tokens_per_s']:.0f} | {r['model_tflop_s']:.3g} | {peak} |")
    if a.json: json.dump(dict(preset=a.preset, device=dev, processes=acc.num_processes, rows=rows), open(a.json, "w"), indent=1)

if __name__ == "__main__": main()
