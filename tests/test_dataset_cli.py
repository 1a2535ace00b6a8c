"The dataset pipeline end to end: synth → check → split → stats → preview via the CLI; import fidelity on public data."
import json, subprocess, sys
from pathlib import Path
import cv2, numpy as np
import pytest
from vessel_nb import dataset as D
from vessel_nb import datatools as DT
from vessel_nb import core

ROOT = Path(__file__).resolve().parent.parent
CIMAT = ROOT.parent/"shared"/"data"/"cimat_angios_80"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vessel_nb.dataset", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_pipeline_on_synthetic_data(tmp_path):
    d = tmp_path/"syn"
    r = cli("synth", d, "--videos", 6, "--frames", 3, "--size", 64, "--seed", 4); assert r.returncode == 0, r.stderr
    r = cli("check", d); assert r.returncode == 0 and "no problems" in r.stdout, r.stdout + r.stderr
    r = cli("split", d, "--val", 0.2, "--test", 0.2, "--seed", 1); assert r.returncode == 0, r.stderr
    r = cli("stats", d, "--json"); assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["samples"], s["videos"], s["splits"]["train"] + s["splits"]["val"] + s["splits"]["test"]) == (18, 6, 18)
    r = cli("preview", d, tmp_path/"prev", "-n", 3); assert r.returncode == 0, r.stderr
    pngs = sorted((tmp_path/"prev").glob("*.png"))
    assert len(pngs) == 3 and all(p.name.startswith("video-") for p in pngs)
    assert cv2.imread(str(pngs[0])).shape == (64, 128, 3)
    assert cli("synth", d).returncode == 1   # never overwrites a data folder (refused: exit 1)
    r = cli("check", "--help")
    assert r.returncode == 0 and "1 errors found, or the folder cannot be read; 2 usage error" in " ".join(r.stdout.split())


def _names(n_patients=5, videos=3, frames=4):
    return [f"P{p}({p:010d})_1-{v}_1_{p*16+v:08X}_frame_{f:06d}.png" for p in range(n_patients) for v in range(videos) for f in range(frames)] + \
           [f"{k}.png" for k in range(7)]   # images without a video id: each its own group


@pytest.mark.parametrize("by", ["video", "patient"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_crosses_splits(tmp_path, by, seed):
    names = _names()
    core.write_json(tmp_path/"annotations.json", [{"image": n, "mask": [[0, 0, 1, 0, 1, 1]], "text": ["v"]} for n in names])
    sp = DT.split_data(tmp_path, val=0.2, test=0.2, seed=seed, by=by)
    assert sorted(sp["train"] + sp["val"] + sp["test"]) == sorted(names)
    key = (lambda n: D.patient_id(n) or D.video_id(n)) if by == "patient" else D.video_id
    owner = {}
    for s in D.SPLITS:
        for n in sp[s]: assert owner.setdefault(key(n), s) == s, f"{key(n)} in {owner[key(n)]} and {s}"
    assert all(sp[s] for s in D.SPLITS)
    assert json.loads((tmp_path/"splits.json").read_text()) == sp
    assert DT.split_data(tmp_path, val=0.2, test=0.2, seed=seed, by=by, overwrite=True) == sp   # deterministic


def test_sample_data_is_clean_and_split_by_video():
    d = ROOT/"data"/"sample"
    assert D.check(d).counts() == {}
    sp = D.load_splits(d)
    vids = {s: {D.video_id(n) for n in sp[s]} for s in D.SPLITS}
    assert not (vids["train"] & vids["val"] or vids["train"] & vids["test"] or vids["val"] & vids["test"])
    assert sum(p.stat().st_size for p in d.iterdir()) < 3_000_000


def test_import_labelme_rescales_recorded_size(tmp_path):
    src = tmp_path/"lm"; src.mkdir()
    cv2.imwrite(str(src/"f.png"), np.zeros((512, 512), np.uint8))
    (src/"f.json").write_text(json.dumps({"imagePath": "f.png", "imageWidth": 800, "imageHeight": 800,
        "shapes": [{"label": "dongmai", "points": [[100, 100], [700, 100], [700, 750]], "shape_type": "polygon"}]}))
    r = cli("import", "labelme", src, tmp_path/"out"); assert r.returncode == 0, r.stderr
    assert "rescaled: 1" in r.stdout
    assert D.load_annotations(tmp_path/"out")[0]["mask"][0][0] == [64, 64, 448, 64, 448, 480]
    assert cli("check", tmp_path/"out").returncode == 0


def _dice(a, b): return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_import_masks_fidelity_cimat(tmp_path):
    if not CIMAT.is_dir(): pytest.skip(f"{CIMAT} not found: public test data is optional")
    r = cli("import", "masks", CIMAT, tmp_path/"cimat"); assert r.returncode == 0, r.stderr
    entries = D.load_annotations(tmp_path/"cimat")
    assert len(entries) == 80
    dice = []
    for e in entries:
        sub, n = e["image"].rsplit("_", 1)
        gt = cv2.imread(str(CIMAT/sub/n.replace(".png", "_gt.png")), cv2.IMREAD_GRAYSCALE) > 127
        dice.append(_dice(D.entry_mask(e, *gt.shape).astype(bool), gt))
    assert min(dice) >= 0.98, min(dice)
    assert cli("check", tmp_path/"cimat").returncode == 0


def _coco(tmp_path, names):
    for n in names[:1]: cv2.imwrite(str(tmp_path/n), np.zeros((10, 10), np.uint8))
    (tmp_path/"coco.json").write_text(json.dumps({
        "images": [{"id": i, "file_name": n, "width": 10, "height": 10} for i, n in enumerate(names)],
        "categories": [{"id": 1, "name": "vessel"}],
        "annotations": [{"image_id": i, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]} for i in range(len(names))]}))
    return tmp_path/"coco.json"


def test_failed_import_leaves_nothing_behind(tmp_path):
    src = _coco(tmp_path, ["a.png", "missing.png"])   # the second image does not exist
    r = cli("import", "coco", src, tmp_path/"out")
    assert r.returncode == 1 and "missing.png" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path/"out").exists() and not list(tmp_path.glob(".out*"))


def test_import_refuses_a_non_empty_folder_and_name_clashes(tmp_path):
    src = _coco(tmp_path, ["a.png"])
    (tmp_path/"out").mkdir(); (tmp_path/"out"/"keep.txt").write_text("mine")
    r = cli("import", "coco", src, tmp_path/"out")
    assert r.returncode == 1 and "not empty" in r.stderr and (tmp_path/"out"/"keep.txt").read_text() == "mine"
    (tmp_path/"sub").mkdir(); cv2.imwrite(str(tmp_path/"sub"/"a.png"), np.zeros((10, 10), np.uint8))
    c = json.loads(src.read_text())
    c["images"].append({"id": 1, "file_name": "sub/a.png", "width": 10, "height": 10})
    c["annotations"].append({"image_id": 1, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]})
    src.write_text(json.dumps(c))
    DT.import_coco(src, tmp_path/"out2")   # one name in two folders of one file: two images, named by their paths
    assert sorted(e["image"] for e in D.load_annotations(tmp_path/"out2")) == ["a.png", "sub_a.png"]
    cv2.imwrite(str(tmp_path/"sub_a.png"), np.zeros((10, 10), np.uint8))
    c["images"].append({"id": 2, "file_name": "sub_a.png", "width": 10, "height": 10})
    c["annotations"].append({"image_id": 2, "category_id": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]})
    src.write_text(json.dumps(c))
    with pytest.raises(D.DataError, match="would both be named 'sub_a.png'"):   # two paths, one flat name: refused
        DT.import_coco(src, tmp_path/"out3")
    assert not (tmp_path/"out3").exists()


def test_committed_sample_is_reproducible(tmp_path):
    "data/sample is exactly what the documented synth + split commands make (the ones `make sample` runs)."
    mk = (ROOT/"Makefile").read_text()
    assert "synth data/sample --videos 20 --frames 3 --size 224 --seed 0" in mk and "split data/sample --val 0.2 --test 0.4 --seed 0" in mk
    d, ref = tmp_path/"s", ROOT/"data"/"sample"
    assert cli("synth", d, "--videos", 20, "--frames", 3, "--size", 224, "--seed", 0).returncode == 0
    assert cli("split", d, "--val", 0.2, "--test", 0.4, "--seed", 0).returncode == 0
    assert D.load_annotations(d) == D.load_annotations(ref)
    assert D.load_splits(d) == D.load_splits(ref)
    for e in D.load_annotations(ref)[::7]:
        a, b = (D.load_image(x/e["image"]).astype(int) for x in (d, ref))
        assert np.abs(a - b).max() <= 2


def test_browser_works_without_a_frontend():
    b = DT.browser(ROOT/"data"/"sample")
    (slider, toggle), image, info = b.children[0].children, b.children[1], b.children[2]
    assert slider.max == 59 and image.value[:4] == b"\x89PNG"
    before = image.value; slider.value = 10
    assert image.value != before and "<b>10</b> video-" in info.value and "Sample" not in info.value
    on = image.value; toggle.value = False
    assert image.value != on
