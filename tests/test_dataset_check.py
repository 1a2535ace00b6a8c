"Bad input: every problem type of `check` has a fixture under tests/fixtures/data and a test of its message."
import hashlib, json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from vessel_nb import dataset as D
from vessel_nb import datatools as DT
from vessel_nb import core

FIX = Path(__file__).resolve().parent/"fixtures"/"data"
KINDS = sorted(D.PROBLEMS)
N = "Fake Person(0000000001)_1-1_1_0000ABCD_frame_{:06d}.png"
GOOD = [2, 2, 12, 2, 12, 12, 2, 12]


def big_png(path, w, h):
    "A valid 1-bit PNG of zeros, `w × h`, written in a few KB without allocating its pixels."
    import struct, zlib
    row, z = b"\x00" * (1 + (w + 7) // 8), zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def folder(d, entries, images=(0, 1)):
    "A data folder: 16×16 images `N.format(k)` for `k` in `images`, and `entries`."
    d.mkdir(parents=True, exist_ok=True)
    for k in images: D.write_image(d/N.format(k), np.full((16, 16), 90, np.uint8))
    core.write_json(d/"annotations.json", entries)
    return d


def entry(k, mask=(GOOD,), text=("blood vessel",), name=None): return {"image": name or N.format(k), "mask": list(mask), "text": list(text)}


def _outside(d):
    folder(d.parent/"elsewhere", [], images=(1,))
    return folder(d, [entry(0), entry(1, name="../elsewhere/" + N.format(1))], images=(0,))


def _too_large(d):
    folder(d, [entry(0), entry(1)], images=(0,)); big_png(d/N.format(1), 13000, 13000)
    return d


BUILT = {   # problem types whose hostile input is built here (too big, or not storable in git)
    "bad_name": lambda d: folder(d, [entry(0), entry(1, name=N.format(1).replace("Person", "P" * 300))], images=(0,)),
    "outside_path": _outside,
    "too_large_image": _too_large,
    "long_text": lambda d: folder(d, [entry(0), entry(1, text=["x" * (D.MAX_TEXT_CHARS + 1)])]),
    "too_many_objects": lambda d: folder(d, [entry(0), entry(1, [GOOD] * (D.MAX_OBJECTS + 1), [f"branch {k}" for k in range(D.MAX_OBJECTS + 1)])]),
    "reserved_token": lambda d: folder(d, [entry(0), entry(1, text=["vessel <image>"])]),
}


def test_every_problem_type_has_a_fixture():
    assert sorted({p.name for p in FIX.iterdir() if p.is_dir() and p.name in D.PROBLEMS} | set(BUILT)) == KINDS


def fixture(kind, tmp_path):
    "The data folder showing `kind` and the counts `check` must report."
    if kind in BUILT: return BUILT[kind](tmp_path/"data"), {kind: 1}
    return FIX/kind, json.loads((FIX/kind/"expected.json").read_text())


def _digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("kind", KINDS)
def test_check_finds_and_explains(kind, capsys, tmp_path):
    d, expected = fixture(kind, tmp_path)
    before = _digest(d)
    r = D.check(d)
    assert r.counts() == expected
    code = DT.main(["check", str(d)])
    out = capsys.readouterr().out
    sev = D.PROBLEMS[kind][0]
    assert code == (1 if sev == "error" else 0)
    assert kind in out and D.PROBLEMS[kind][2] in out            # the type and what to do
    p = r.problems[0]
    if p.entry is not None: assert f"entry {p.entry}" in out     # where
    assert "video-" in out and "Fake Person" not in out          # pseudonymized file name
    assert DT.main(["check", str(d), "--strict"]) == 1            # warnings are errors with --strict
    assert _digest(d) == before                                  # input never modified


@pytest.mark.parametrize("name", ["unreadable_annotations", "not_a_list"])
def test_unreadable_input_exits_1_without_traceback(name):
    r = subprocess.run([sys.executable, "-m", "vessel_nb.dataset", "check", str(FIX/name)], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout   # bad input: 1, like every command (2 is a usage error)
    assert "annotations.json" in r.stderr and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_real_names_only_on_request(capsys):
    DT.main(["check", str(FIX/"missing_image"), "--real-names"])
    assert "Fake Person(0000000001)" in capsys.readouterr().out


def test_json_report_lists_every_problem(capsys):
    assert DT.main(["check", str(FIX/"recorded_size"), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["counts"] == {"recorded_size": 1} and rep["exit_code"] == 1
    assert rep["problems"][0]["entry"] == 1 and "fix-scale" in rep["problems"][0]["fix"]


def test_fix_scale_writes_a_clean_copy(tmp_path, capsys):
    src = FIX/"recorded_size"; before = _digest(src)
    assert DT.main(["check", str(src), "--fix-scale", str(tmp_path/"fixed")]) == 1
    assert _digest(src) == before
    assert D.check(tmp_path/"fixed").counts() == {}
    e = D.load_annotations(tmp_path/"fixed")[1]
    assert max(e["mask"][0][0::2]) <= 16 and max(e["mask"][0][1::2]) <= 16
    assert DT.main(["check", str(src), "--fix-scale", str(tmp_path/"fixed")]) == 1   # never overwrites (refused: exit 1)


def test_data_problems_in_the_dataset_are_messages(tmp_path):
    for kind in ["bad_text", "text_mismatch"]:
        with pytest.raises(D.DataError, match="text"):
            D.VesselDataset(FIX/kind, "all", strict=True)


def test_recorded_size_800_on_512():
    "The user's case: many 512×512 frames annotated in an 800×800 space."
    rng = np.random.default_rng(0)
    ext = {i: (f"v_frame_{i:06d}.png", [(0, 0, rng.uniform(0, rng.uniform(600, 799), (30, 2)))]) for i in range(20)}
    probs, canvas = D._bounds_problems(ext, {n: (512, 512) for n, _ in ext.values()})
    assert {p.kind for p in probs} == {"recorded_size"} and set(canvas.values()) == {(800, 800)}


def test_truncated_image_is_unreadable(tmp_path):
    import shutil
    src = FIX/"unreadable_image"
    for p in src.iterdir(): shutil.copy(p, tmp_path/p.name)
    good = next(p for p in tmp_path.glob("*.png") if p.stat().st_size > 60)
    good.write_bytes(good.read_bytes()[:-20])   # cut the end: header still readable
    assert D.check(tmp_path).counts() == {"unreadable_image": 2}


WEIRD = [None, 3, "x", [], {}, {"image": 5, "mask": [], "text": []}, {"image": "a.png", "mask": "poly", "text": "v"},
         {"image": "a.png", "mask": [[None, 1, 2, 3, 4, 5]], "text": "blood vessel"},
         {"image": "a.png", "mask": [[[[1, 2]]]], "text": [1]}, {"image": "a.png", "mask": [[{"x": 1}]], "text": [""]},
         {"image": "a.png", "mask": [[1e308, 1e308, 1, 1, 2, 3]], "text": ["v"]},
         {"image": "../../a.png", "mask": [[1, 1, 2, 2, 3, 1]], "text": ["v", "w", "x"]}]


@pytest.mark.parametrize("k", range(len(WEIRD)))
def test_no_input_ends_in_a_traceback(tmp_path, k, capsys):
    D.write_image(tmp_path/"a.png", np.zeros((8, 8), np.uint8))
    core.write_json(tmp_path/"annotations.json", [WEIRD[k], {"image": "a.png", "mask": [[1, 1, 6, 1, 6, 6]], "text": ["v"]}])
    assert DT.main(["check", str(tmp_path)]) in (0, 1)
    assert DT.main(["stats", str(tmp_path)]) == 0
    assert DT.main(["preview", str(tmp_path), str(tmp_path/"p"), "-n", "2"]) == 0
