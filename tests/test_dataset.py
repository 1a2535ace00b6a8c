"The `dataset` contract the other modules rely on: settings, rasterizer, object policy, splits, the torch Dataset."
import json, os
from pathlib import Path
import numpy as np
import pytest
import torch
from vessel_nb import dataset as D
from vessel_nb import datatools as DT
from vessel_nb import core

ROOT = Path(__file__).resolve().parent.parent
SMALL = D.DataConfig(tile_size=64, patch_size=8, sam_size=128, mask_size=32)


def test_settings_env_overrides_file(tmp_path, monkeypatch):
    ini = tmp_path/"settings.ini"
    ini.write_text("[paths]\ndata = d\nwork = runs\n[gpu]\nbatch_size = 1\n")
    monkeypatch.setenv("VESSEL_NB_SETTINGS", str(ini))
    assert core.setting("paths.data") == str(tmp_path/"d")
    assert core.setting("gpu.batch_size") == 1
    monkeypatch.setenv("VESSEL_NB_GPU_BATCH_SIZE", "4")
    assert core.setting("gpu.batch_size") == 4
    assert core.setting("paths.missing", "x") == "x"


def test_project_settings_file_readable():
    s = core.site_settings(ROOT/"settings.ini")
    for k in ["paths.data", "paths.work", "gpu.num_processes", "gpu.mixed_precision", "gpu.batch_size"]:
        assert k in s, k


def test_rasterize_hand_checked():
    # unit square at pixel (1, 2): exactly one pixel
    m = D.rasterize([2, 1, 3, 1, 3, 2, 2, 2], 4, 4)
    assert m.sum() == 1 and m[1, 2] == 1
    # a polygon through pixel centres: left/top boundary in, right/bottom out
    m = D.rasterize([0.5, 0.5, 3.5, 0.5, 3.5, 3.5, 0.5, 3.5], 4, 4)
    assert m.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    # overlapping polygons of one object: union, never 2
    m = D.rasterize([[0, 0, 4, 0, 4, 4, 0, 4], [0, 0, 4, 0, 4, 4, 0, 4]], 4, 4)
    assert m.dtype == np.uint8 and m.max() == 1 and m.sum() == 16


def test_rasterize_adjacent_polygons_tile_without_gaps_or_overlap():
    a = [0, 0, 2.3, 0, 1.7, 5, 0, 5]
    b = [2.3, 0, 5, 0, 5, 5, 1.7, 5]
    ma, mb = D.rasterize(a, 5, 5), D.rasterize(b, 5, 5)
    assert (ma & mb).sum() == 0 and (ma | mb).sum() == 25


def test_object_policy_never_drops_a_polygon():
    e = {"image": "x.png", "mask": [[0, 0, 2, 0, 2, 2], [3, 3, 5, 3, 5, 5], [[6, 6, 8, 6, 8, 8]]], "text": ["blood vessel"]}
    objs = D.entry_objects(e)
    assert len(objs) == 1 and len(objs[0][1]) == 3
    e["text"] = ["a", "b"]
    assert sum(len(p) for _, p in D.entry_objects(e)) == 3
    with pytest.raises(D.DataError, match="3 objects but 2 texts"):
        D.entry_objects(e, strict=True)


def _toy(d, n_videos=3, frames=2, size=(40, 50)):
    ann = []
    for v in range(n_videos):
        for f in range(frames):
            name = f"Fake Name({v:010d})_1-{v}_1_{v:08X}_frame_{f:06d}.png"
            D.write_image(d/name, np.full(size, 100, np.uint8))
            ann.append({"image": name, "mask": [[5, 5, 30, 5, 30, 20, 5, 20], [20, 10, 45, 10, 45, 35, 20, 35]], "text": ["blood vessel"]})
    core.write_json(d/"annotations.json", ann)
    return d


def test_dataset_sample_contract(tmp_path):
    _toy(tmp_path)
    ds = D.VesselDataset(tmp_path, "all", SMALL, repeats=2, seed=3)
    assert len(ds) == 12
    s = ds[5]
    assert set(s) == {"pixel_values", "sam_image", "masks", "segments", "image", "video", "size"}
    assert s["pixel_values"].dtype == s["sam_image"].dtype == s["masks"].dtype == torch.float32
    assert s["pixel_values"].shape[1:] == (3, 64, 64) and s["sam_image"].shape == (3, 128, 128)
    assert s["masks"].shape == (1, 32, 32) and set(s["masks"].unique().tolist()) == {0.0, 1.0}
    assert s["size"] == (40, 50) and s["video"].startswith("video-") and "Fake" not in s["video"]
    assert sum(t.count("[SEG]") for t, a in s["segments"] if a) == 1
    assert ds[5]["segments"] == s["segments"]   # deterministic
    # the mask at mask_size is the same polygons rasterized at that size
    want = D.rasterize([[5, 5, 30, 5, 30, 20, 5, 20], [20, 10, 45, 10, 45, 35, 20, 35]], 32, 32, scale=(32/50, 32/40))
    assert np.array_equal(s["masks"][0].numpy(), want)


def test_dataset_bad_entry_is_a_clear_error(tmp_path):
    _toy(tmp_path, 1, 1)
    ann = json.loads((tmp_path/"annotations.json").read_text())
    ann[0]["mask"] = [[], [1, 2, 3, 4, 5, 6]]; ann[0]["text"] = ["a", "b"]
    core.write_json(tmp_path/"annotations.json", ann)
    with pytest.raises(D.DataError, match="empty_mask: entry 0"):
        D.VesselDataset(tmp_path, "all", SMALL)


def test_fingerprints_change_with_data(tmp_path):
    _toy(tmp_path)
    f0 = D.data_fingerprint(tmp_path)
    assert len(f0) == 16
    ann = json.loads((tmp_path/"annotations.json").read_text()); ann[0]["text"] = ["vessel"]
    core.write_json(tmp_path/"annotations.json", ann)
    assert D.data_fingerprint(tmp_path) != f0


def test_dataloader_and_subset_take_the_dataset(tmp_path):
    _toy(tmp_path)
    ds = D.VesselDataset(tmp_path, "all", SMALL)
    dl = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [1, 2]), batch_size=2, collate_fn=list)
    batch = next(iter(dl))
    assert [b["image"] for b in batch] == [ds.entries[1]["image"], ds.entries[2]["image"]]


def test_module_imports_without_torch():
    import subprocess, sys
    code = "import sys, vessel_nb.dataset; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_stale_split_is_a_clear_error(tmp_path):
    _toy(tmp_path)
    DT.split_data(tmp_path, val=0.3, test=0.3, seed=0)
    ann = json.loads((tmp_path/"annotations.json").read_text())
    gone = D.load_split(tmp_path, "train")[0]
    core.write_json(tmp_path/"annotations.json", [e for e in ann if e["image"] != gone])
    with pytest.raises(D.DataError, match="re-run `split`"):
        D.VesselDataset(tmp_path, "train", SMALL)
