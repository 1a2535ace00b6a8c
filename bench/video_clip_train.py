"""Does propagation learn? Clip training vs single-frame training of the tiny preset on synthetic 16-frame videos.

    python bench/video_clip_train.py --steps 150 --clip 6          # CPU, a few minutes

Two copies of the tiny model (same seed) train for the same number of AdamW steps on the same synthetic training
videos (`vessel_nb.synth.angio_video`: cardiac motion, contrast wash-in): `frame` with the ordinary forward on single
frames (2 × clip frames per step), `clip` with `VesselSa2VA.clip_forward` on 2 clips of `--clip` frames per step (the key
frame's [SEG] prompts SAM2, the memory carries it, losses on every frame; `sam_memory` trains). Both are then run on
held-out 16-frame videos with `predict_video` per frame and propagated from frame 0, and scored with
`vessel_nb.metrics.video_metrics` at threshold 0.5. Prints a markdown table; `--json FILE` also writes the numbers."""
import argparse, json, random, sys, time
import numpy as np, torch
from vessel_nb.dataset import internvl_tiles, sam_image, rasterize, chat_segments, class_name
from vessel_nb.metrics import video_metrics
from vessel_nb.model import TINY_TRAIN, Collator, VesselPredictor, build_model, get_config
from vessel_nb.synth import angio_video


def videos(n:int, frames:int, size:int, seed:int) -> list:
    "`n` synthetic videos: `[(images uint8 (T, S, S), masks bool (T, S, S))]` (the mask of a frame is the union of its vessels)."
    out = []
    for v in range(n):
        fr = angio_video(np.random.default_rng([seed, v]), size, frames)
        out.append((np.stack([im for im, _ in fr]), np.stack([rasterize(p, size, size).astype(bool) for _, p in fr])))
    return out


def sample(img, mask, cfg):
    "A dataset-like sample of one frame with one object (the vessels), with the fixed chat (seeded templates)."
    d = cfg.data
    return dict(pixel_values=torch.from_numpy(internvl_tiles(img, d)), sam_image=torch.from_numpy(sam_image(img, d)),
                masks=torch.from_numpy(mask[None].astype(np.float32)), segments=chat_segments(["blood vessel"], d, random.Random(0)),
                image="synthetic.png", video="video-0", size=img.shape[:2])


def frame_batch(train, rng, coll, cfg, n):
    picks = [(v, rng.integers(len(train[v][0]))) for v in rng.integers(len(train), size=n)]
    return coll([sample(train[v][0][f], train[v][1][f], cfg) for v, f in picks])


def clip_batch(train, rng, coll, cfg, n, T):
    b, ims, ms = [], [], []
    for v in rng.integers(len(train), size=n):
        imgs, masks = train[v]; s = rng.integers(len(imgs) - T + 1)
        b.append(sample(imgs[s], masks[s], cfg))
        ims.append(torch.stack([torch.from_numpy(sam_image(im, cfg.data)) for im in imgs[s:s + T]]))
        ms.append(torch.from_numpy(masks[s:s + T].astype(np.float32)))
    return dict(coll(b), clip_images=torch.stack(ims), clip_masks=torch.stack(ms))


def train(arm:str, data, steps:int, T:int, lr:float, seed:int):
    cfg = get_config("tiny", train=TINY_TRAIN + (["sam_memory"] if arm == "clip" else []))
    model = build_model(cfg, device="cpu"); coll = Collator(model.tokenizer, cfg)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    rng, losses, t0 = np.random.default_rng(seed), [], time.time()
    model.train()
    for i in range(steps):
        out = model.clip_forward(clip_batch(data, rng, coll, cfg, 2, T)) if arm == "clip" else model(frame_batch(data, rng, coll, cfg, 2 * T))
        opt.zero_grad(); out["loss"].backward(); opt.step(); losses.append(out["loss"].item())
        if i % 25 == 0 or i == steps - 1: print(f"{arm} step {i}: loss {np.mean(losses[-25:]):.3f} ({time.time() - t0:.0f} s)", flush=True)
    return model.eval(), time.time() - t0


def evaluate(model, val) -> dict:
    d = model.cfg.data; r = random.Random(0)
    q, a = r.choice(d.questions).format(class_name=class_name("blood vessel")), r.choice(d.answers)   # the training chat
    pred, out = VesselPredictor(model, answer=a), {}
    for mode in ("per_frame", "propagate"):
        rows = [video_metrics(np.stack([p.mask for p in pred.predict_video(list(imgs), q, mode=mode)]), masks) for imgs, masks in val]
        out[mode] = {k: float(np.mean([r_[k] for r_ in rows])) for k in rows[0]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150); ap.add_argument("--clip", type=int, default=6)
    ap.add_argument("--train-videos", type=int, default=16); ap.add_argument("--val-videos", type=int, default=6)
    ap.add_argument("--frames", type=int, default=16); ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--threads", type=int, default=1); ap.add_argument("--json")
    a = ap.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    size = get_config("tiny").data.sam_size
    tr, va = videos(a.train_videos, a.frames, size, 1000 + a.seed), videos(a.val_videos, a.frames, size, 2000 + a.seed)
    res = {}
    for arm in ("frame", "clip"):
        model, secs = train(arm, tr, a.steps, a.clip, a.lr, a.seed)
        res[arm] = dict(seconds=round(secs, 1), **evaluate(model, va))
    print(f"\n{a.steps} steps, {a.train_videos} training / {a.val_videos} held-out videos of {a.frames} frames at {size}², clips of {a.clip}; "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n")
    print("| training | mode | Dice | worst-frame Dice | area change (truth) | consecutive IoU (truth) |\n|---|---|---:|---:|---:|---:|")
    for arm, r in res.items():
        for mode in ("per_frame", "propagate"):
            m = r[mode]
            print(f"| {arm} ({r['seconds']:.0f} s) | {mode} | {m['dice']:.3f} | {m['dice_min']:.3f} | {m['area_change']:.4f} ({m['area_change_gt']:.4f}) | "
                  f"{m['iou_consecutive']:.3f} ({m['iou_consecutive_gt']:.3f}) |")
    if a.json: open(a.json, "w").write(json.dumps(dict(args=vars(a), results=res), indent=1) + "\n")


if __name__ == "__main__": sys.exit(main())
