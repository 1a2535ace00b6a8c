"Importing public datasets: a published COCO split in several files, descriptions from categories, skipped files listed, layouts in --help."
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from vessel_nb import dataset as D
from vessel_nb import datatools as DT

ROOT = Path(__file__).resolve().parent.parent
SQUARE = [[2, 2, 12, 2, 12, 12, 2, 12]]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vessel_nb.dataset", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def _coco(path, files, category="stenosis", unannotated=()):
    "A COCO file listing `files` (each annotated with a square) and `unannotated` names (no annotation)."
    ims = [{"id": k, "file_name": f, "width": 16, "height": 16} for k, f in enumerate(list(files) + list(unannotated))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": ims, "categories": [{"id": 3, "name": category}],
                                "annotations": [{"id": k, "image_id": k, "category_id": 3, "segmentation": SQUARE} for k in range(len(files))]}))
    return path


def _published(tmp_path):
    """Three files of one published split, each with its own `1.png` (different pixels), in the three layouts:
    train: JSON beside the images (and a second `1.png` in `sub/`); val: images in `images/`; test: ARCADE
    (`annotations/test.json` + `images/`). Each split has one image without annotations."""
    src, rng, pixels = tmp_path/"pub", np.random.default_rng(0), {}
    where = {"train": (src/"train", src/"train/train.json"), "val": (src/"val/images", src/"val/val.json"),
             "test": (src/"test/images", src/"test/annotations/test.json")}
    for s, (imdir, j) in where.items():
        files = ["1.png", "sub/1.png"] if s == "train" else ["1.png"]
        for f in files + ["empty.png"]:
            pixels[f"{s}_{f.replace('/', '_')}"] = img = rng.integers(0, 256, (16, 16), dtype=np.uint8)
            D.write_image(imdir/f, img)
        _coco(j, files, unannotated=["empty.png"])
    return {s: j for s, (_, j) in where.items()}, pixels


def _split_args(files):
    return ["--split-file", *[f"{s}={j}" for s, j in files.items()]]


def test_three_files_import_with_their_published_split(tmp_path):
    files, pixels = _published(tmp_path)
    out = tmp_path/"data"
    r = cli("import", "coco", *_split_args(files), out); assert r.returncode == 0, r.stderr
    entries = D.load_annotations(out)
    names = [e["image"] for e in entries]
    assert sorted(names) == ["test_1.png", "train_1.png", "train_sub_1.png", "val_1.png"] and len(set(names)) == len(names)
    sp = D.load_splits(out)
    assert (sp["train"], sp["val"], sp["test"]) == (["train_1.png", "train_sub_1.png"], ["val_1.png"], ["test_1.png"])
    assert sp["by"] == "published" and sp["sources"] == {s: str(j) for s, j in files.items()}
    assert [D.load_split(out, s) for s in D.SPLITS] == [sp[s] for s in D.SPLITS]
    for n in names: assert np.array_equal(D.load_image(out/n, grey=True), pixels[n]), n   # pixel-exact, no mix-up
    assert all(e["text"] == ["stenosis"] for e in entries)                                 # the category name
    assert D.check(out).counts() == {}
    assert "splits: train 2, val 1, test 1 images" in r.stdout and "'stenosis' 4 object(s)" in r.stdout
    # images without annotations: counted on the console, listed with their source in import.json
    assert f"skipped: 3 image(s) without annotations, not imported; listed under \"skipped\" in {out/'import.json'}" in r.stdout
    rec = json.loads((out/"import.json").read_text())
    assert sorted((x["source"], x["file_name"]) for x in rec["skipped"]) == sorted((str(j), "empty.png") for j in files.values())
    assert rec["entries"] == 4 and rec["texts"] == {"stenosis": 4}
    assert not any(n.endswith("empty.png") for n in names) and not (out/"train_empty.png").exists()


def test_text_overrides_the_category_and_images_folder_per_split(tmp_path):
    files, _ = _published(tmp_path)
    r = cli("import", "coco", *_split_args(files), tmp_path/"data", "--text", "blood vessel"); assert r.returncode == 0, r.stderr
    assert {t for e in D.load_annotations(tmp_path/"data") for t in e["text"]} == {"blood vessel"}
    assert "'blood vessel' 4 object(s) (from the --text)" in r.stdout
    flat = tmp_path/"flat"                      # images of each split in one folder named after it: --images DIR/{split}
    for s in ("train", "val"): D.write_image(flat/s/"1.png", np.full((16, 16), 9, np.uint8)); _coco(flat/f"{s}.json", ["1.png"])
    r = cli("import", "coco", "--split-file", f"train={flat/'train.json'}", f"val={flat/'val.json'}", tmp_path/"d2", "--images", f"{flat}/{{split}}")
    assert r.returncode == 0, r.stderr
    assert D.load_splits(tmp_path/"d2")["val"] == ["val_1.png"] and D.load_splits(tmp_path/"d2")["test"] == []
    assert "test empty: to draw from train, run" in r.stdout and "--by video --val-glob 'val_*' --test 0.2" in r.stdout


def test_single_file_keeps_working_with_category_names(tmp_path):
    D.write_image(tmp_path/"src"/"images"/"7.png", np.zeros((16, 16), np.uint8))
    j = _coco(tmp_path/"src"/"ann.json", ["7.png"], category="lad", unannotated=["8.png"])
    r = cli("import", "coco", j, tmp_path/"data"); assert r.returncode == 0, r.stderr
    assert D.load_annotations(tmp_path/"data")[0]["text"] == ["lad"] and not (tmp_path/"data"/"splits.json").exists()
    assert "skipped: 1 image(s) without annotations" in r.stdout
    assert json.loads((tmp_path/"data"/"import.json").read_text())["skipped"][0]["file_name"] == "8.png"


def test_split_val_glob_keeps_a_published_val(tmp_path):
    files, _ = _published(tmp_path)
    out = tmp_path/"data"
    assert cli("import", "coco", *_split_args(files), out).returncode == 0
    before = D.load_splits(out)
    r = cli("split", out, "--overwrite", "--by", "video", "--val-glob", "val_*", "--test-glob", "test_*"); assert r.returncode == 0, r.stderr
    sp = D.load_splits(out)
    assert [sp[s] for s in D.SPLITS] == [before[s] for s in D.SPLITS] and sp["salt"] == before["salt"]
    assert (sp["val_glob"], sp["test_glob"]) == ("val_*", "test_*")
    r = cli("split", out, "--overwrite", "--val-glob", "val_*"); assert r.returncode == 0, r.stderr   # test: drawn from the rest
    sp = D.load_splits(out)
    assert sp["val"] == ["val_1.png"] and len(sp["test"]) == 1 and "val_1.png" not in sp["test"] + sp["train"]
    r = cli("split", out, "--overwrite", "--val-glob", "val_*", "--val", "0.2")
    assert r.returncode == 1 and "--val-glob 'val_*' fixes the val split" in r.stderr
    r = cli("split", out, "--overwrite", "--val-glob", "nothing*")
    assert r.returncode == 1 and "no image name matches --val-glob 'nothing*'" in r.stderr


def test_each_importer_help_shows_its_layouts():
    for fmt, layout, example in [("masks", "SRC/images/N.png + SRC/masks/N.png", "import masks cimat_angios_80 data/cimat"),
                                 ("coco", "train/annotations/train.json + train/images/N.png", "--split-file train=tr.json val=va.json test=te.json"),
                                 ("labelme", "SRC/N.json + SRC/N.png", "import labelme labelme_export data/mine")]:
        r = cli("import", fmt, "--help")
        assert r.returncode == 0 and layout in r.stdout and example in r.stdout, (fmt, r.stdout)
    r = cli("import", "coco", "--help")
    assert "SRC is the COCO .json file" in r.stdout and "train_1.png" in r.stdout and "import.json" in r.stdout
    r = cli("import", "--help")
    assert r.returncode == 0 and all(f in r.stdout for f in ("masks", "coco", "labelme"))


def _one_error(r, *words):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert all(w in lines[0] for w in words), (words, lines)


def test_bad_inputs_end_in_one_line_naming_the_file(tmp_path):
    files, _ = _published(tmp_path)
    out = tmp_path/"data"
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", f"val={tmp_path/'nope.json'}", out), str(tmp_path/"nope.json"), "not found")
    _one_error(cli("import", "coco", tmp_path/"nope.json", out), str(tmp_path/"nope.json"), "not found")
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", f"dev={files['val']}", out), f"dev={files['val']}", "unknown split 'dev'")
    (tmp_path/"bad.json").write_text('{"images": [')
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", f"test={tmp_path/'bad.json'}", out), str(tmp_path/"bad.json"), "not valid JSON")
    D.write_image(tmp_path/"1.png", np.zeros((16, 16), np.uint8))
    (tmp_path/"ann.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "1.png"}], "annotations": [{"image_id": 1}]}))
    _one_error(cli("import", "coco", tmp_path/"ann.json", out), str(tmp_path/"ann.json"), "lacks the field 'category_id'")
    _one_error(cli("import", "coco", files["train"].parent, out), str(files["train"].parent), "give the COCO .json file")
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", f"val={files['train']}", out), "given for both train and val")
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", f"train={files['val']}", out), "train is given twice")
    _one_error(cli("import", "coco", "--split-file", f"train={files['train']}", "val=", out), "--split-file val=", "file is missing")
    assert not out.exists() and not list(tmp_path.glob(".data*"))   # nothing half-written
    r = cli("import", "coco", "--split-file", f"train={files['train']}", files["val"], out)   # a JSON without its split name
    assert r.returncode == 2 and f"val={files['val']}" in r.stderr


def test_masks_skipped_empty_masks_are_listed_with_what_to_do(tmp_path):
    m = np.zeros((16, 16), np.uint8); m[4:12, 6:9] = 255
    D.write_image(tmp_path/"src"/"images"/"a.png", np.full((16, 16), 50, np.uint8)); D.write_image(tmp_path/"src"/"masks"/"a.png", m)
    D.write_image(tmp_path/"src"/"images"/"b.png", np.full((16, 16), 50, np.uint8)); D.write_image(tmp_path/"src"/"masks"/"b.png", m // 4)
    r = cli("import", "masks", tmp_path/"src", tmp_path/"data"); assert r.returncode == 0, r.stderr
    assert f"skipped: 1 image(s) whose mask is empty, not imported; listed under \"skipped\" in {tmp_path/'data'/'import.json'}" in r.stdout
    assert "lower --threshold" in r.stdout
    assert json.loads((tmp_path/"data"/"import.json").read_text())["skipped"] == [
        {"image": "images/b.png", "mask": "masks/b.png", "reason": "no mask pixel above 127"}]
    r = cli("import", "masks", tmp_path/"src", tmp_path/"d2", "--threshold", "30"); assert r.returncode == 0, r.stderr
    assert len(D.load_annotations(tmp_path/"d2")) == 2 and "  skipped:" not in r.stdout


def test_dicom_is_an_import_format_of_the_dataset_command(tmp_path):
    "`python -m vessel_nb.dataset import dicom SRC OUT`: the same import as `python -m vessel_nb.dicom`, exit 3 when a file is left out."
    import subprocess, sys
    from vessel_nb import dicom as D
    D.synthetic_run(tmp_path/"src"/"run.dcm", n=4, size=32); (tmp_path/"src"/"junk.dcm").write_bytes(b"junk")
    p = subprocess.run([sys.executable, "-m", "vessel_nb.dataset", "import", "dicom", str(tmp_path/"src"), str(tmp_path/"out"), "--every", "2"],
                       capture_output=True, text=True)
    assert p.returncode == D.EXIT_SKIPPED and "imported 1 run(s), 2 frames" in p.stdout, p.stderr
    assert "junk.dcm: not a DICOM file" in p.stderr and "Traceback" not in p.stderr
    assert len(list((tmp_path/"out"/"images").iterdir())) == 2
    h = subprocess.run([sys.executable, "-m", "vessel_nb.dataset", "import", "--help"], capture_output=True, text=True).stdout
    assert "{masks,coco,labelme,dicom}" in h
