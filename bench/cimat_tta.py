"""Flip test-time augmentation on validation only: for each CIMAT run, its selected checkpoint's validation Dice (best
threshold on the validation curve) with and without `flip_tta`. Never reads the test split.
    python bench/cimat_tta.py DATA RUN [RUN ...]      (RUN: a scripts/cimat.sh output folder, e.g. runs/cimat/NAME)"""
import json, sys, time
from pathlib import Path
from vessel_nb.eval import load_eval_model, EvalSplit, run_split
from vessel_nb.metrics import ThresholdCurve, choose_threshold

def val_dice(model, val) -> tuple[float, float]:
    "Best validation Dice and its threshold."
    c = ThresholdCurve("val"); run_split(model, val, curve=c, progress=False)
    ch = choose_threshold(c, None)
    return ch.score, ch.threshold

if __name__ == "__main__":
    data, runs = sys.argv[1], sys.argv[2:]
    val = EvalSplit(data, "val")
    for run in map(Path, runs):
        best = json.loads((run/"eval"/"checkpoints"/"checkpoints.json").read_text())["best"]
        m, _ = load_eval_model(str(run/"train"/best))
        row = dict(run=run.name, checkpoint=best)
        for tta in (False, True):
            m.predictor.model.cfg.flip_tta = tta; t0 = time.time()
            d, th = val_dice(m, val)
            row[f"val_dice_tta_{'on' if tta else 'off'}"], row[f"threshold_tta_{'on' if tta else 'off'}"] = round(d, 4), th
            row[f"sec_tta_{'on' if tta else 'off'}"] = round(time.time() - t0, 1)
        print(json.dumps(row), flush=True)
