"End-to-end tests of `python -m vessel_nb.eval` on a tiny synthetic data folder: outputs, threshold rule, leakage refusal."
import csv, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from vessel_nb.dataset import load_split
from vessel_nb.datatools import synth, split_data
from vessel_nb.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaldata")/"data"
    synth(d, videos=4, frames=2, size=64, seed=0)
    split_data(d, val=0.25, test=0.25)
    return d


def run_cli(*args):
    env = dict(os.environ, MPLBACKEND="Agg", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "vessel_nb.eval", "--no-progress", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_cli_frangi_end_to_end(data, tmp_path):
    out = tmp_path/"out"
    r = run_cli("--model", "frangi", "--data", data, "--split", "test", "--out", out, "--save-probs")
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == [".vessel_nb-output", "figures", "metrics.json", "per_image.csv", "per_video.csv", "probs", "threshold_curve.csv"]
    m = json.loads((out/"metrics.json").read_text())
    for k in METRICS + ("cldice", "threshold", "threshold_source", "split", "model", "data_fingerprint"): assert k in m, k
    assert m["split"] == "test" and m["threshold_source"] == "val curve" and m["threshold_split"] == "val"
    assert m["leakage"] == "clean" and m["leakage_acknowledged"] is False and m["model"]["kind"] == "frangi"
    assert m["overlap"]["n"] == 0 and m["overlap"]["n_training"] == len(load_split(data, "train")) and m["excluded_n"] == 0
    assert m["model"]["fit_split"] == "train" and m["n_images"] == len(load_split(data, "test"))
    assert 0 <= m["dice"] <= 1 and m["dice"] == pytest.approx(np.mean([float(r["dice"]) for r in csv.DictReader(open(out/"per_image.csv"))]))
    rows = list(csv.DictReader(open(out/"per_image.csv")))
    assert all(r["name"].startswith("video-") and "(" not in r["name"] for r in rows)  # pseudonyms, no patient names
    curve = list(csv.DictReader(open(out/"threshold_curve.csv")))
    assert {r["split"] for r in curve} == {"val"} and len(curve) == 101  # tuned on val, never on test
    best = max(curve, key=lambda r: float(r["dice"]) if r["dice"] else -1)
    assert float(best["threshold"]) == pytest.approx(m["threshold"])
    figs = sorted((out/"figures").iterdir())
    assert [p.name for p in figs] == ["best.png", "median.png", "worst.png"] and all(p.stat().st_size < 200_000 for p in figs)
    probs = sorted((out/"probs").iterdir())
    assert len(probs) == m["n_images"] and np.load(probs[0])["prob"].shape == (64, 64)
    assert "dice" in r.stdout and str(out) in r.stdout


def test_cli_refuses_training_split_unless_acknowledged(data, tmp_path):
    r = run_cli("--model", "frangi", "--data", data, "--split", "train", "--out", tmp_path/"o")
    assert r.returncode == 1 and "refusing to evaluate on 'train'" in r.stderr and "--allow-overlap" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path/"o").exists()  # nothing partial left behind
    for flag in ("--allow-overlap", "--allow-train-split"):  # the older name still works
        r = run_cli("--model", "frangi", "--data", data, "--split", "train", "--out", tmp_path/flag, flag, "--no-cldice")
        assert r.returncode == 0, r.stderr
        m = json.loads((tmp_path/flag/"metrics.json").read_text())
        assert m["leakage_acknowledged"] is True and m["leakage"] == "overlap" and "LEAKAGE ACKNOWLEDGED" in r.stdout
        assert m["overlap"]["flag"] == "--allow-overlap" and m["overlap"]["n"] == m["n_images"] == len(m["overlap"]["images"])


def run_main(capsys, *args):
    "The CLI in-process (faster than a subprocess): `(exit status, stdout, stderr)`."
    from vessel_nb.eval import main
    rc = main(["--no-progress", *map(str, args)]); o = capsys.readouterr()
    return rc, o.out, o.err


def test_cli_fixed_threshold_and_existing_output(data, tmp_path, capsys):
    rc, out, err = run_main(capsys, "--model", "frangi", "--data", data, "--out", tmp_path/"o", "--threshold", "0.4", "--no-cldice")
    assert rc == 0, err
    m = json.loads((tmp_path/"o"/"metrics.json").read_text())
    assert m["threshold"] == 0.4 and m["threshold_source"] == "fixed (--threshold)" and "cldice" not in m
    rc, out, err = run_main(capsys, "--model", "frangi", "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "--overwrite" in err


def test_cli_bad_inputs(data, tmp_path, capsys):
    rc, _, err = run_main(capsys, "--model", "frangi", "--data", tmp_path/"nowhere", "--out", tmp_path/"o")
    assert rc == 1 and "no annotations.json" in err
    rc, _, err = run_main(capsys, "--model", tmp_path/"no_model", "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "not 'frangi' and not a folder" in err
    (tmp_path/"empty_model").mkdir()
    rc, _, err = run_main(capsys, "--model", tmp_path/"empty_model", "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "not a checkpoint" in err and "an exported model folder" in err and err.count("error: ") == 1 and "Traceback" not in err
    rc, _, err = run_main(capsys, "--checkpoints", tmp_path, "--split", "test", "--data", data, "--out", tmp_path/"o")
    assert rc == 2 and "'val' only" in err
    rc, _, err = run_main(capsys, "--checkpoints", tmp_path, "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "no complete iter_N" in err
    assert not (tmp_path/"o").exists()
