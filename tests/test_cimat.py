"""The real-angiogram path (issue 9) on CPU: the CIMAT import and published split, the preset's config, the
pipeline script's refusal without data, and the Frangi baseline the docs compare against."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from vessel_nb import dataset as D, datatools as T

ROOT = Path(__file__).resolve().parent.parent
CIMAT = ROOT.parent/"shared"/"data"/"cimat_angios_80"
need_cimat = pytest.mark.skipif(not CIMAT.is_dir(), reason=f"{CIMAT} not found (public test data, see ../shared/data/README.md)")

@pytest.fixture(scope="module")
def cimat(tmp_path_factory):
    "The CIMAT angiograms imported and split as scripts/cimat.sh does."
    if not CIMAT.is_dir(): pytest.skip(f"{CIMAT} not found (public test data, see ../shared/data/README.md)")
    d = tmp_path_factory.mktemp("cimat")/"data"
    T.import_masks(CIMAT, d)
    T.split_data(d, val=0.2, test=0, seed=0, test_glob="Angios_40_testing_*")
    return d

@need_cimat
def test_published_split_is_kept(cimat):
    "The 40 published test images are the test split; validation is carved out of the 40 training images."
    sp = json.loads((cimat/"splits.json").read_text())
    assert [len(sp[s]) for s in D.SPLITS] == [32, 8, 40]
    assert all(n.startswith("Angios_40_testing_") for n in sp["test"])
    assert not any(n.startswith("Angios_40_testing_") for n in sp["train"] + sp["val"])
    assert D.check(cimat).exit_code == 0

@need_cimat
def test_frangi_baseline_on_the_test_split(cimat, tmp_path):
    "The baseline the docs quote (Dice 0.705, accuracy 0.963 on the 40 test images, threshold chosen on val)."
    from vessel_nb.eval import main
    assert main(["--no-progress", "--no-cldice", "--model", "frangi", "--data", str(cimat), "--out", str(tmp_path/"f")]) == 0
    m = json.loads((tmp_path/"f"/"metrics.json").read_text())
    assert m["n_images"] == 40 and m["threshold_split"] == "val"
    assert m["dice"] == pytest.approx(0.7050, abs=5e-4) and m["accuracy"] == pytest.approx(0.9635, abs=5e-4)

def test_cimat_script_refuses_without_data(tmp_path):
    "No data: exit 2 with a message that names the folder and the variable to set; nothing is created."
    env = {**os.environ, "CIMAT": str(tmp_path/"nowhere"), "DATA": str(tmp_path/"d"), "OUT": str(tmp_path/"o")}
    r = subprocess.run(["bash", "scripts/cimat.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nowhere" in r.stderr and "CIMAT=" in r.stderr
    assert not (tmp_path/"d").exists() and not (tmp_path/"o").exists()

def test_preset_and_sweep_configs_resolve():
    "The CIMAT presets and every sweep config build a scratch preset with augmentation and equal loss weights."
    from vessel_nb.train import load_config, resolve_config, model_config, check_model
    files = [ROOT/"configs"/"cimat-scratch.yaml", ROOT/"configs"/"cimat-refine.yaml", *sorted((ROOT/"configs"/"cimat-sweep").glob("*.yaml"))]
    assert len(files) == 11
    for f in files:
        c = resolve_config(load_config(str(f)))
        m = model_config(c); check_model(c)
        assert c.augment and m.preset.startswith("scratch-") and (m.loss_bce, m.loss_dice) == (1.0, 1.0), f
        assert m.sam2_checkpoint == "" and "sam_encoder" in m.train, f
    m = model_config(resolve_config(load_config(str(files[1]))))
    assert (m.refine, m.loss_cldice, m.flip_tta, m.data.sam_size) == (16, 1.0, True, 1024)
    assert (model_config(resolve_config(load_config(str(files[0])))).refine) == 0   # the measured preset is unchanged
