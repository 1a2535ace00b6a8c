"""`python -m vessel_nb.predict` on every input kind (an image, a folder of frames, an MP4 video, a DICOM file and a DICOM
folder) with a tiny trained checkpoint and with `frangi`; prompt and threshold defaults and their sources; the GIF
fallback; refusals; and the end-to-end privacy check: a generated DICOM run with planted patient details goes through
import -> predict -> movie, and no output byte (files, PNG chunks, JSON, the movie, the console) holds any of them."""
import json, struct, subprocess, sys, zlib
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from vessel_nb import predict as P
from vessel_nb.core import sha256_file, write_json
from vessel_nb.dicom import synthetic_run, synthetic_frames, import_dicom

PLANTED = dict(PatientName="Zyxwv^Qwertina", PatientID="ZZ-991177", PatientBirthDate="19311231", StudyDate="20190317",
               InstitutionName="Saint Quibble Infirmary", AccessionNumber="ACCX55821", DeviceSerialNumber="SERIAL-7Q7Q")
TINY_ARGS = ["--answer", "Sure, [SEG].", "--device", "cpu"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict")
    fr = synthetic_frames(3, 40)
    cv2.imwrite(str(d/"one.png"), fr[0])
    (d/"frames").mkdir()
    for v in ("Doe_Jane", "Roe_Rick"):
        for k, f in enumerate(fr): cv2.imwrite(str(d/"frames"/f"{v}_frame_{k + 1}.png"), f)
    w = cv2.VideoWriter(str(d/"run.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12, (40, 40))
    for f in fr: w.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    w.release()
    synthetic_run(d/"run.dcm", n=4, size=40)
    synthetic_run(d/"series", n=3, size=40, single_frame=True, seed=2)
    return d


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vessel_nb.testing import trained_tiny
    from vessel_nb.checkpoint import save_checkpoint
    from vessel_nb.train import TrainConfig
    d, m = tmp_path_factory.mktemp("tiny"), trained_tiny()
    save_checkpoint(d/"work", 1, m.trainable_state_dict(), dict(config=asdict(TrainConfig(preset="tiny")), model_config=asdict(m.cfg),
                    identity=m.identity(), iter=1), training_set={"version": 1, "n": 3, "names": [], "contents": [], "texts": {"stenosis": 3}})
    return d/"work"/"iter_1"


def run(capsys, *args):
    rc = P.main([str(a) for a in args] + ["--no-progress"]); o = capsys.readouterr()
    return rc, o.out, o.err


KINDS = {"one.png": (1, 0), "frames": (6, 2), "run.mp4": (3, 1), "run.dcm": (4, 1), "series": (3, 1)}   # frames, movies


@pytest.mark.parametrize("model", ["frangi", "tiny"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_input_kind(inputs, tiny, tmp_path, capsys, kind, model):
    spec, extra = (str(tiny), TINY_ARGS) if model == "tiny" else ("frangi", ["--workers", "1"])
    rc, out, err = run(capsys, inputs/kind, "--model", spec, "--out", tmp_path/"o", *extra)
    assert rc == 0, err
    n, movies = KINDS[kind]
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    masks = sorted((tmp_path/"o"/"masks").iterdir())
    assert r["input"]["frames"] == n == len(masks) and f"predicted {n} frames" in out
    assert len(list((tmp_path/"o").glob("movies/*.mp4"))) == movies == sum(v["movie"] is not None for v in r["videos"])
    row = r["videos"][0]["frames"][0]
    m = cv2.imread(str(tmp_path/"o"/row["mask"]), cv2.IMREAD_GRAYSCALE)
    assert m.shape == (40, 40) and set(np.unique(m)) <= {0, 255} and row["vessel_pixels"] == int((m == 255).sum())
    assert r["threshold"] == 0.5 and r["threshold_source"].startswith("default 0.5")
    if model == "tiny":
        assert r["prompt"] == "Please segment the stenosis." and r["prompt_source"] == "training" and f'prompt "{r["prompt"]}"' in out
        assert r["model"]["kind"] == "checkpoint" and r["model"]["sha256"] == sha256_file(tiny/"checksums.json")
    else:
        assert r["prompt"] is None and r["model"]["kind"] == "frangi" and len(r["model"]["sha256"]) == 64


def test_movie_shows_frame_numbers_and_fps_of_the_run(inputs, tmp_path, capsys):
    rc, out, err = run(capsys, inputs/"run.dcm", "--model", "frangi", "--workers", "1", "--out", tmp_path/"o", "--frames", "2:4", "--every", "2")
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    v = r["videos"][0]
    assert rc == 0 and [f["frame"] for f in v["frames"]] == [2, 4] and abs(v["fps"] - 15) < 0.1
    cap = cv2.VideoCapture(str(tmp_path/"o"/v["movie"]))
    ok, first = cap.read()
    assert ok and first.shape[1] >= 256 and abs(cap.get(cv2.CAP_PROP_FPS) - v["fps"]) < 0.1 and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    assert first[:30, :, :].max() == 255   # the burned-in label (white text) in the top band; the frames themselves are below 255


def test_tiny_model_decodes_its_own_answer_and_takes_a_prompt(inputs, tiny, tmp_path, capsys):
    rc, out, err = run(capsys, inputs/"one.png", "--model", tiny, "--out", tmp_path/"o", "--device", "cpu", "--prompt", "Please segment the LAD.")
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    assert rc == 0 and r["prompt"] == "Please segment the LAD." and r["prompt_source"] == "--prompt" and r["answer"] is None
    assert r["no_seg"] in (0, 1) and len(list((tmp_path/"o"/"masks").iterdir())) == 1


def test_threshold_from_an_eval_run_of_this_model_only(inputs, tiny, tmp_path, capsys):
    write_json(tmp_path/"ev"/"metrics.json", dict(threshold=0.31, threshold_source="val curve", split="test", model=dict(path=str(tiny.resolve()))))
    rc, out, err = run(capsys, inputs/"one.png", "--model", tiny, "--out", tmp_path/"o", *TINY_ARGS, "--threshold-from", tmp_path/"ev")
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    assert rc == 0 and r["threshold"] == 0.31 and "val curve" in r["threshold_source"] and "threshold 0.31" in out
    write_json(tmp_path/"ev2"/"metrics.json", dict(threshold=0.2, threshold_source="val curve", model=dict(path="/elsewhere/model")))
    rc, out, err = run(capsys, inputs/"one.png", "--model", tiny, "--out", tmp_path/"o2", *TINY_ARGS, "--threshold-from", tmp_path/"ev2")
    assert rc == 1 and "evaluated another model (/elsewhere/model)" in err and not (tmp_path/"o2").exists()
    rc, out, err = run(capsys, inputs/"one.png", "--model", "frangi", "--out", tmp_path/"o3", "--threshold", "0.7")
    assert rc == 0 and json.loads((tmp_path/"o3"/"predictions.json").read_text())["threshold_source"] == "fixed (--threshold)"


def test_gif_when_opencv_cannot_write_mp4(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(P, "mp4_works", lambda: False)
    rc, out, err = run(capsys, inputs/"run.dcm", "--model", "frangi", "--workers", "1", "--out", tmp_path/"o", "--save-probs")
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    from PIL import Image
    with Image.open(tmp_path/"o"/r["videos"][0]["movie"]) as im: assert im.format == "GIF" and im.n_frames == 4
    assert rc == 0 and len(list((tmp_path/"o"/"probs").iterdir())) == 4


def test_refusals(inputs, tmp_path, capsys):
    rc, out, err = run(capsys, tmp_path/"nothing", "--model", "frangi", "--out", tmp_path/"o")
    assert rc == 1 and err.startswith("error: ") and "nothing: no such file or folder" in err
    (tmp_path/"notes.txt").write_text("x")
    rc, out, err = run(capsys, tmp_path/"notes.txt", "--model", "frangi", "--out", tmp_path/"o")
    assert rc == 1 and "notes.txt: not an image" in err
    rc, out, err = run(capsys, inputs/"one.png", "--out", tmp_path/"o")
    assert rc == 2 and "--model: required" in err
    rc, out, err = run(capsys, inputs/"one.png", "--model", "frangi", "--out", tmp_path/"o", "--threshold", "1.5")
    assert rc == 2 and "--threshold 1.5" in err
    rc, out, err = run(capsys, inputs/"frames", "--model", "frangi", "--out", inputs/"frames"/"out")
    assert rc == 1 and "lies inside the input" in err
    rc, out, err = run(capsys, inputs/"one.png", "--model", tmp_path/"no_model", "--out", tmp_path/"o")
    assert rc == 1 and "no_model" in err and not (tmp_path/"o").exists()


def test_names_are_pseudonyms_unless_real_names(inputs, tmp_path, capsys):
    run(capsys, inputs/"frames", "--model", "frangi", "--workers", "1", "--out", tmp_path/"o")
    assert not [p for p in (tmp_path/"o").rglob("*") if "Doe" in p.name or "Roe" in p.name]
    assert b"Doe" not in (tmp_path/"o"/"predictions.json").read_bytes()
    run(capsys, inputs/"frames", "--model", "frangi", "--workers", "1", "--out", tmp_path/"r", "--real-names")
    assert (tmp_path/"r"/"masks"/"Doe_Jane_frame_1.png").is_file() and (tmp_path/"r"/"movies"/"Doe_Jane.mp4").is_file()


def test_skipped_dicom_files_set_the_exit_code(tmp_path, capsys):
    synthetic_run(tmp_path/"src"/"a.dcm", n=2, size=32)
    b = synthetic_run(tmp_path/"src"/"b.dcm", n=2, size=32)[0]; b.write_bytes(b.read_bytes()[:-300])
    rc, out, err = run(capsys, tmp_path/"src", "--model", "frangi", "--workers", "1", "--out", tmp_path/"o")
    assert rc == 3 and f"skipped {b}" in err and "truncated" in err
    assert json.loads((tmp_path/"o"/"predictions.json").read_text())["skipped"]["n"] == 1


def png_text_chunks(data:bytes) -> list[bytes]:
    "The tEXt / zTXt / iTXt / eXIf chunks of a PNG file."
    out, i = [], 8
    while i + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"): out.append(kind)
        i += 12 + n
    return out


def test_end_to_end_no_planted_detail_anywhere(tiny, tmp_path):
    "DICOM with planted patient details -> import -> predict (frangi, and the tiny model on the raw run) -> movie: grep every byte."
    synthetic_run(tmp_path/"study"/"XA"/"run.dcm", n=5, size=48, bits=16, slope=2.0, intercept=-50, photometric="MONOCHROME1", patient=PLANTED)
    synthetic_run(tmp_path/"study"/"RF", n=3, size=48, single_frame=True, sop="xrf", patient=PLANTED, seed=4)
    cli = lambda mod, *a: subprocess.run([sys.executable, "-m", f"vessel_nb.{mod}", *map(str, a)], capture_output=True, text=True)
    logs = [cli("dicom", tmp_path/"study", tmp_path/"data", "--mapping", tmp_path/"private"/"map.json")]
    logs.append(cli("predict", tmp_path/"data", "--model", "frangi", "--workers", "1", "--out", tmp_path/"pred", "--save-probs"))
    logs.append(cli("predict", tmp_path/"study", "--model", tiny, "--out", tmp_path/"pred2", *TINY_ARGS))
    assert [p.returncode for p in logs] == [0, 0, 0], [p.stderr[-500:] for p in logs]
    files = [p for d in ("data", "pred", "pred2") for p in (tmp_path/d).rglob("*") if p.is_file()]
    assert len([f for f in files if f.suffix == ".mp4"]) == 4 and len(files) > 30
    blob = b"".join(f.read_bytes() + str(f.relative_to(tmp_path)).encode() for f in files) + "".join(p.stdout + p.stderr for p in logs).encode()
    for v in PLANTED.values():
        for form in {v, v.replace("^", " "), v.split("^")[0], v.split("^")[-1]}:
            assert form.encode() not in blob, f"{form!r} found in the outputs"
    assert not [f for f in files if f.suffix == ".png" and png_text_chunks(f.read_bytes())]
    assert b"Qwertina" in (tmp_path/"private"/"map.json").read_bytes()   # the mapping, outside every output, is the one place it lives
    r = json.loads((tmp_path/"pred"/"predictions.json").read_text())
    assert r["input"]["videos"] == 2 and sorted(v["fps"] for v in r["videos"]) == [14.993, 15.0] and r["input"]["frames"] == 8


def test_exported_model(inputs, tmp_path, capsys):
    "An exported folder (`save_pretrained`, as `convert export` writes it): loaded as eval loads it, its checksums.json hashed."
    from vessel_nb.model import save_pretrained
    from vessel_nb.testing import trained_tiny
    save_pretrained(trained_tiny(), tmp_path/"export")
    rc, out, err = run(capsys, inputs/"run.dcm", "--model", tmp_path/"export", "--out", tmp_path/"o", *TINY_ARGS, "--batch-size", "2")
    r = json.loads((tmp_path/"o"/"predictions.json").read_text())
    assert rc == 0, err
    assert r["model"]["kind"] == "exported" and r["model"]["sha256"] == sha256_file(tmp_path/"export"/"checksums.json")
    assert r["prompt_source"] == "default" and r["input"]["frames"] == 4 and r["videos"][0]["movie"].endswith(".mp4")
