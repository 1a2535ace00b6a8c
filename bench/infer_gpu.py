"""Inference benchmark: one 512² frame end to end and batched frames/s, with a per-stage breakdown.

    python bench/infer_gpu.py --preset internvl3-8b --batches 1 8 16 32   # on a GPU (random weights)
    python bench/infer_gpu.py --preset internvl3-8b --batches 1 32 --forced   # fixed answer, no decoding loop
    python bench/infer_gpu.py --preset tiny --batches 1 2 --reps 2        # CPU smoke run

Random weights never generate `[SEG]` by themselves, so the benchmark decodes a fixed number of tokens (`--decode`,
6 like "Sure, [SEG].<|im_end|>") and prompts SAM2 with the last decoded state: the same work as a real prediction.
Prints a markdown table; `--json FILE` also writes the numbers."""
import argparse, json, platform, statistics, time
import numpy as np, torch
import torch.nn.functional as F
from vessel_nb.model import build_model, get_config, merge_for_inference, VesselPredictor, greedy_generate, forced_answer, sam_features, decode_masks, token_id, CHAT_TOKENS
from vessel_nb.dataset import internvl_tiles, sam_image

def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize(dev)

def timed(fn, dev, reps):
    "Median seconds of `reps` calls after one warm-up, and the last result."
    out = fn(); sync(dev); ts = []
    for _ in range(reps):
        t = time.perf_counter(); out = fn(); sync(dev); ts.append(time.perf_counter() - t)
    return statistics.median(ts), out

def frames(n, size, seed=0):
    "Synthetic grey 512² angiogram-like frames (uint8 RGB)."
    g = np.random.default_rng(seed)
    return [np.repeat(g.integers(0, 255, (size, size, 1), dtype=np.uint8), 3, 2) for _ in range(n)]

def stages(pred, imgs, decode, dev, reps, forced=False):
    "Seconds per stage for a batch of images: tiling, vision, prefill, decode, SAM2 encoder, decoder, end to end."
    m, core = pred.model, pred.model.core
    r = {}
    r["tiling"], x = timed(lambda: pred._inputs(imgs, ["Please segment the blood vessel."] * len(imgs)), dev, reps)
    with torch.no_grad(), m.autocast():
        r["vision"], _ = timed(lambda: core.model.get_image_features(pixel_values=x["pixel_values"]), dev, reps)
        r["prefill"], _ = timed(lambda: core.model(input_ids=x["input_ids"], attention_mask=x["attention_mask"],
                                                   pixel_values=x["pixel_values"], use_cache=True), dev, reps)
        gen = lambda k: (forced_answer(core, x["input_ids"], x["attention_mask"], x["pixel_values"], torch.full((k,), m.seg_id, device=dev))
                         if forced else greedy_generate(core, x["input_ids"], x["attention_mask"], x["pixel_values"], k, [-1], m.tokenizer.pad_token_id))
        t_gen, (ids, hs) = timed(lambda: gen(decode), dev, reps)
        r["decode"] = max(t_gen - r["prefill"], 0.0)
        r["sam_encoder"], (emb, high) = timed(lambda: sam_features(m.sam, x["sam_images"]), dev, reps)
        prompts = m.seg_head(hs[:, -1])
        r["sam_decoder"], logits = timed(lambda: decode_masks(m.sam, emb, high, prompts)[0], dev, reps)
    def end_to_end():
        with torch.no_grad(), m.autocast():
            x = pred._inputs(imgs, ["Please segment the blood vessel."] * len(imgs))
            ids, hs = gen(decode)
            emb, high = sam_features(m.sam, x["sam_images"])
            lg = decode_masks(m.sam, emb, high, m.seg_head(hs[:, -1]))[0]
            H, W = imgs[0].shape[:2]
            return F.interpolate(lg[:, None].float(), size=(H, W), mode="bilinear")[:, 0].sigmoid().cpu().numpy()
    r["end_to_end"], _ = timed(end_to_end, dev, reps)
    return r

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="internvl3-8b"); p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32])
    p.add_argument("--size", type=int, default=512); p.add_argument("--decode", type=int, default=6)
    p.add_argument("--reps", type=int, default=5); p.add_argument("--json", default="")
    p.add_argument("--no-merge", action="store_true", help="keep the LoRA adapters unmerged (the training model) instead of the exported form")
    p.add_argument("--forced", action="store_true", help="a fixed answer of --decode tokens in one pass (VesselPredictor(answer=...)): "
                   "the 'decode' column is then that pass minus the prefill")
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time(); model = build_model(get_config(a.preset), random_weights=a.preset != "tiny", device=dev)
    print(f"built {a.preset} in {time.time()-t0:.1f}s on {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu'}")
    if not a.no_merge: merge_for_inference(model)   # what `convert export` writes: plain merged weights
    pred = VesselPredictor(model)
    rows = []
    for b in a.batches:
        try: r = stages(pred, frames(b, a.size), a.decode, dev, a.reps, a.forced)
        except torch.OutOfMemoryError: print(f"batch {b}: out of memory"); break
        r.update(batch=b, frames_per_s=b / r["end_to_end"], peak_gib=torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan"))
        rows.append(r)
    keys = ["tiling", "vision", "prefill", "decode", "sam_encoder", "sam_decoder", "end_to_end"]
    print(f"\n| batch | {' | '.join(k + ' ms' for k in keys)} | frames/s | peak GiB |")
    print("|---" * (len(keys) + 3) + "|")
    for r in rows:
        print(f"| {r['batch']} | " + " | ".join(f"{1000*r[k]:.1f}" for k in keys) + f" | {r['frames_per_s']:.1f} | {r['peak_gib']:.1f} |")
    env = dict(merged=not a.no_merge, forced_answer=a.forced, torch=torch.__version__, device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", preset=a.preset)
    print(f"\n{env}")
    if a.json: json.dump(dict(env=env, rows=rows), open(a.json, "w"), indent=1)

if __name__ == "__main__": main()
