"Hostile inputs: splits never replaced silently, no rescaling on weak evidence, the pipeline's limits, paths and pseudonyms."
import json, struct, subprocess, sys, time, zlib
from pathlib import Path
import numpy as np
import pytest
from vessel_nb import dataset as D
from vessel_nb import datatools as DT
from vessel_nb import core
from test_dataset_check import N, GOOD, big_png, entry, folder

ROOT = Path(__file__).resolve().parent.parent
SMALL = D.DataConfig(tile_size=64, patch_size=8, sam_size=128, mask_size=32)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vessel_nb.dataset", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


# ---- 1. splits
def _patients(d, patients=4, videos=3, frames=2):
    names = [f"Fake Person{p}({p:010d})_1-{v}_1_{p*16+v:08X}_frame_{f:06d}.png" for p in range(patients) for v in range(videos) for f in range(frames)]
    core.write_json(d/"annotations.json", [{"image": n, "mask": [GOOD], "text": ["v"]} for n in names])
    return names


def test_split_refuses_to_replace_splits_without_overwrite(tmp_path):
    _patients(tmp_path)
    assert cli("split", tmp_path).returncode == 0
    before = (tmp_path/"splits.json").read_bytes()
    r = cli("split", tmp_path, "--seed", 5)
    assert r.returncode == 1 and "exists; pass --overwrite" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path/"splits.json").read_bytes() == before
    r = cli("split", tmp_path, "--seed", 5, "--overwrite"); assert r.returncode == 0, r.stderr
    new = json.loads((tmp_path/"splits.json").read_text())
    assert new["seed"] == 5 and new["salt"] == json.loads(before)["salt"]   # pseudonyms unchanged


def test_split_groups_by_patient_by_default(tmp_path):
    names = _patients(tmp_path)
    r = cli("split", tmp_path, "--val", 0.25, "--test", 0.25); assert r.returncode == 0, r.stderr
    assert "grouped by patient" in r.stdout
    sp = D.load_splits(tmp_path)
    assert sp["group_by"] == "patient"
    where = {}
    for s in D.SPLITS:
        for n in sp[s]: assert where.setdefault(D.patient_id(n), s) == s, f"patient {D.patient_id(n)} in two splits"
    assert len(where) == 4 and all(sp[s] for s in D.SPLITS)


def test_split_groups_by_video_without_patient_ids(tmp_path):
    core.write_json(tmp_path/"annotations.json", [{"image": f"clip{v}_frame_{f:06d}.png", "mask": [GOOD], "text": ["v"]} for v in range(6) for f in range(2)])
    r = cli("split", tmp_path); assert r.returncode == 0 and "grouped by video" in r.stdout, r.stdout + r.stderr
    assert D.load_splits(tmp_path)["group_by"] == "video"


def test_split_by_flag_still_chooses(tmp_path):
    _patients(tmp_path)
    r = cli("split", tmp_path, "--by", "video"); assert r.returncode == 0 and "grouped by video" in r.stdout
    sp = D.load_splits(tmp_path)
    assert (sp["by"], sp["group_by"]) == ("video", "video")
    assert cli("split", tmp_path, "--by", "name", "--overwrite").returncode == 2      # argparse refuses others


# ---- 3. --fix-scale
def _image512(d, k=0): D.write_image(d/N.format(k), np.zeros((512, 512), np.uint8))


def test_one_polygon_past_the_border_is_not_rescaled(tmp_path):
    src = tmp_path/"in"; src.mkdir(); _image512(src)
    inside = [[10, 10, 60, 10, 60, 60, 10, 60], [100, 100, 200, 100, 200, 150], [300, 300, 400, 310, 350, 420]]
    past = [450, 200, 600, 210, 590, 260, 440, 250]   # drawn past the right border (reaches 600 on 512)
    core.write_json(src/"annotations.json", [entry(0, inside + [past])])
    r = D.check(src)
    assert r.counts() == {"out_of_bounds": 1} and r.canvas == {}
    assert "mask item 3 polygon 0 reaches (600, 260)" in r.problems[0].detail
    out = cli("check", src, "--fix-scale", tmp_path/"fixed")
    assert out.returncode == 1 and "0 entries rescaled" in out.stdout and "rescaled entry" not in out.stdout
    assert D.load_annotations(tmp_path/"fixed") == D.load_annotations(src)        # correct labels untouched
    assert D.check(tmp_path/"fixed").counts() == {"out_of_bounds": 1}              # still reported


def test_a_consistently_800_space_entry_is_rescaled_and_listed(tmp_path):
    src = tmp_path/"in"; src.mkdir(); _image512(src); _image512(src, 1)
    grid = [[x, y, x + 40, y, x + 40, y + 30, x, y + 30] for x in range(50, 800, 100) for y in range(50, 800, 100)]   # spans 800×800
    core.write_json(src/"annotations.json", [entry(0, grid), entry(1, [[10, 10, 50, 10, 50, 50]])])
    r = D.check(src)
    assert r.counts() == {"recorded_size": 1} and r.canvas == {0: (800, 800)}
    out = cli("check", src, "--fix-scale", tmp_path/"fixed")
    assert "1 entries rescaled" in out.stdout, out.stdout + out.stderr
    salt = D.dataset_salt(src)
    assert f"rescaled entry 0 ({D.display_name(N.format(0), salt=salt)}): annotated on 800×800, image 512×512: coordinates ×0.64 (x), ×0.64 (y)" in out.stdout
    assert "Fake Person" not in out.stdout
    assert D.check(tmp_path/"fixed").counts() == {}
    assert D.load_annotations(tmp_path/"fixed")[1] == D.load_annotations(src)[1]   # other entries as they were


# ---- 5. the pipeline's limits
def test_huge_image_is_refused_from_its_header(tmp_path):
    d = folder(tmp_path/"d", [entry(0), entry(1)], images=(0,)); big_png(d/N.format(1), 13000, 13000)
    assert (d/N.format(1)).stat().st_size < 200_000
    t = time.perf_counter(); r = D.check(d); dt = time.perf_counter() - t
    assert r.counts() == {"too_large_image": 1} and "13000×13000 = 169 Mpx, more than the 64 Mpx limit" in r.problems[0].detail
    assert dt < 5, dt                                                       # nothing decoded
    with pytest.raises(D.DataError, match=r"image video-[0-9a-f]{12}_frame_000001 in .*169 Mpx.*--max-pixels") as e: D.load_image(d/N.format(1))
    assert "Fake Person" not in str(e.value)
    with pytest.raises(D.DataError, match="too_large_image"): D.VesselDataset(d, "all", SMALL)
    assert D.check(d, max_pixels=200_000_000, decode=False).counts() == {}       # the limit is a setting
    big_png(d/N.format(1), 20000, 20000)                                    # beyond the decoder's own limit: still a problem
    assert D.check(d, max_pixels=10**9).counts() == {"too_large_image": 1}


def _corrupt_png(path):
    "A PNG whose header and chunk layout are valid but whose compressed pixel data is garbage."
    D.write_image(path, (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    b = bytearray(path.read_bytes()); i = b.find(b"IDAT"); n = struct.unpack(">I", b[i-4:i])[0]
    b[i+10:i+4+n-4] = b"\x55" * (n - 10)
    b[i+4+n:i+8+n] = struct.pack(">I", zlib.crc32(bytes(b[i:i+4+n])) & 0xffffffff)   # even the CRC is right
    path.write_bytes(bytes(b))


def test_corrupt_pixel_data_is_caught_by_default(tmp_path):
    d = folder(tmp_path/"d", [entry(0), entry(1)], images=(0,)); _corrupt_png(d/N.format(1))
    r = D.check(d)
    assert r.counts() == {"unreadable_image": 1} and r.problems[0].detail == "the pixel data does not decode"
    out = cli("check", d, "--no-decode")
    assert out.returncode == 0 and "not decoded: --no-decode" in out.stdout                # says what it skipped
    with pytest.raises(D.DataError, match=r"image video-[0-9a-f]{12}_frame_000001 in .*not a readable image") as e: D.load_image(d/N.format(1))
    assert "Fake Person" not in str(e.value)
    core.write_json(d/"annotations.json", [entry(0), entry(1)]); DT.split_data(d, 0, 0)
    ds = D.VesselDataset(d, "train", SMALL)                                                 # built from headers
    with pytest.raises(D.DataError, match=r"image video-.*not a readable image"): [ds[i] for i in range(len(ds))]


def test_many_images_decode_once_per_file(tmp_path):
    d = folder(tmp_path/"d", [entry(0)], images=(0,))
    for k in range(1, 40): (d/N.format(k)).hardlink_to(d/N.format(0))
    core.write_json(d/"annotations.json", [entry(k) for k in range(40)])
    calls = []
    orig = D._decodes
    try:
        D._decodes = lambda p: calls.append(p) or orig(p)
        assert D.check(d).counts() == {}
    finally: D._decodes = orig
    assert len(calls) == 1


@pytest.mark.parametrize("texts,kind", [(["x" * 201], "long_text"), ([f"b{k}" for k in range(17)], "too_many_objects"),
                                        (["v" * 200], None), ([f"b{k}" for k in range(16)], None)])
def test_token_budget(tmp_path, texts, kind):
    d = folder(tmp_path/"d", [entry(0), entry(1, [GOOD] * len(texts), texts)])
    assert D.check(d).counts() == ({kind: 1} if kind else {})
    if kind:
        with pytest.raises(D.DataError, match=kind): D.VesselDataset(d, "all", SMALL)
        out = cli("check", d); assert out.returncode == 1 and D.PROBLEMS[kind][2] in out.stdout
    else: assert len(D.VesselDataset(d, "all", SMALL)[1]["segments"]) == 2 * len(texts)


@pytest.mark.parametrize("tok", ["<image>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>", "[SEG]", "<|im_start|>", "<|endoftext|>"])
def test_reserved_tokens_are_refused(tmp_path, tok):
    d = folder(tmp_path/"d", [entry(0), entry(1, text=[f"left {tok} artery"])])
    r = D.check(d)
    assert r.counts() == {"reserved_token": 1} and tok in r.problems[0].detail
    with pytest.raises(D.DataError, match="reserved_token"): D.VesselDataset(d, "all", SMALL)
    with pytest.raises(D.DataError, match="reserves"): D.chat_segments([f"left {tok} artery"])


@pytest.mark.parametrize("name", ["x" * 256 + ".png", "sub" * 90 + "/a.png", "Fake Person(1)_" + "é" * 130 + ".png", "a\x00b.png"])
def test_unusable_file_names_are_problems_not_tracebacks(tmp_path, name):
    d = folder(tmp_path/"d", [entry(0), entry(1, name=name)], images=(0,))
    out = cli("check", d)
    assert out.returncode == 1 and "bad_name" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "é" not in out.stdout and "xxxx" not in out.stdout
    with pytest.raises(D.DataError, match="rename the file"): D.image_path(d, name)
    assert cli("stats", d).returncode == 0


# ---- 9. paths and pseudonyms
def test_paths_leaving_the_data_folder_are_refused(tmp_path):
    d = tmp_path/"data"; folder(tmp_path/"store", [], images=(1, 2, 3)); folder(d, [], images=(0,))
    (d/"link.png").symlink_to(tmp_path/"store"/N.format(3))
    ents = [entry(0), entry(1, name=str(tmp_path/"store"/N.format(1))), entry(2, name="../store/" + N.format(2)), entry(3, name="link.png")]
    core.write_json(d/"annotations.json", ents)
    r = D.check(d)
    assert r.counts() == {"outside_path": 3} and {p.entry for p in r.problems if p.kind == "outside_path"} == {1, 2, 3}
    out = cli("check", d); assert out.returncode == 1 and "--allow-outside" in out.stdout and "store" not in out.stdout
    assert D.check(d, allow_outside=True).counts() == {}
    assert cli("check", d, "--allow-outside").returncode == 0
    for e in ents[1:]:
        with pytest.raises(D.DataError, match="leaves the data folder"): D.image_path(d, e["image"])
    with pytest.raises(D.DataError, match="outside_path"): D.VesselDataset(d, "all", SMALL)
    assert len(D.VesselDataset(d, "all", SMALL, allow_outside=True)[3]["masks"]) == 1


def test_pseudonyms_are_long_salted_and_never_collide(tmp_path):
    vids = [f"Fake Person({k:010d})_1-1_1_{k:08X}" for k in range(10_000)]
    assert len({D.pseudonym(v + "_frame_000001.png", "salt") for v in vids}) == 10_000
    assert len({D.pseudonym(v + ".png") for v in vids}) == 10_000
    assert D.pseudonym(vids[0] + ".png", "a") != D.pseudonym(vids[0] + ".png", "b")
    d = folder(tmp_path/"d", [entry(0), entry(1)])
    before = sorted(p.name for p in d.iterdir())
    d.chmod(0o555)
    try: salt = D.dataset_salt(d)
    finally: d.chmod(0o755)
    assert sorted(p.name for p in d.iterdir()) == before and len(salt) == 16      # read only: nothing written
    DT.split_data(d, 0, 0)
    assert D.dataset_salt(d) == salt == D.load_splits(d)["salt"]                   # the same before and after split
    r = D.check(folder(tmp_path/"e", [entry(0), entry(1, [[0, 0, 1, 0]])]))
    assert f"({D.display_name(N.format(1), salt=r.salt)})" in D.format_report(r)


def test_split_refuses_to_leave_train_empty(tmp_path):
    _patients(tmp_path, patients=1)
    r = cli("split", tmp_path)
    assert r.returncode == 1 and "1 patient group(s) leave nothing to train on" in r.stderr and "--by video" in r.stderr
    assert not (tmp_path/"splits.json").exists()
    r = cli("split", tmp_path, "--by", "video", "--val", 0.3, "--test", 0.3); assert r.returncode == 0, r.stderr
