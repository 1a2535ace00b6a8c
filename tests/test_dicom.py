"""DICOM import (`vessel_nb.dicom`): runs written with pydicom in the test (multi-frame XA, MONOCHROME1, 16-bit with rescale,
single-frame XRF series, JPEG), refusals (structured report, burned-in text, missing decoder), damaged files skipped with
the exit code saying so, frame selection, and de-identification: no planted patient detail in any output byte."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from vessel_nb import dicom as D
from vessel_nb.dataset import load_image, check

PLANTED = dict(PatientName="Zyxwv^Qwertina", PatientID="ZZ-991177", PatientBirthDate="19311231", StudyDate="20190317",
               InstitutionName="Saint Quibble Infirmary", AccessionNumber="ACCX55821", DeviceSerialNumber="SERIAL-7Q7Q")


def run(capsys, *args):
    rc = D.main([str(a) for a in args]); o = capsys.readouterr()
    return rc, o.out, o.err


def frames_of(out):
    return sorted((Path(out)/"images").iterdir())


def close(a, b, tol=1): return int(np.abs(a.astype(int) - b.astype(int)).max()) <= tol


def test_multiframe_xa_is_imported_with_its_timing(tmp_path, capsys):
    D.synthetic_run(tmp_path/"src"/"run.dcm", n=6, size=40, frame_time=50.0)
    rc, out, err = run(capsys, tmp_path/"src", tmp_path/"out")
    assert rc == 0, err
    fs = frames_of(tmp_path/"out")
    assert len(fs) == 6 and all(f.name.startswith("video-") and "_frame_000" in f.name for f in fs)
    want = D.synthetic_frames(6, 40)
    assert all(close(load_image(f, grey=True), w) for f, w in zip(fs, want))
    man = json.loads((tmp_path/"out"/D.MANIFEST).read_text())
    v = man["videos"][0]
    assert [f["frame"] for f in v["frames"]] == [1, 2, 3, 4, 5, 6] and v["frames"][2]["time_ms"] == 100.0
    assert v["frame_rate"] == 20.0 and v["modality"] == "XA" and v["sop_class"] == "X-Ray Angiographic Image Storage"
    assert json.loads((tmp_path/"out"/"annotations.json").read_text()) == []
    assert "imported 1 run(s), 6 frames" in out


@pytest.mark.parametrize("kw", [dict(photometric="MONOCHROME1"), dict(bits=16, slope=2.0, intercept=-100),
                                dict(bits=16, slope=1.5, intercept=-20, photometric="MONOCHROME1")])
def test_display_pipeline_gives_back_the_drawn_frames(tmp_path, kw):
    "Rescale, window and MONOCHROME1 inversion applied in the order of the standard: the PNGs are the frames that were drawn."
    D.synthetic_run(tmp_path/"r.dcm", n=3, size=32, **kw)
    D.import_dicom(tmp_path/"r.dcm", tmp_path/"out")
    got = np.stack([load_image(f, grey=True) for f in frames_of(tmp_path/"out")])
    assert close(got, D.synthetic_frames(3, 32))
    assert got.mean() > 120   # bright background, dark vessels: an inversion error would flip this


def test_without_a_window_the_run_range_is_used(tmp_path):
    D.synthetic_run(tmp_path/"r.dcm", n=3, size=32, bits=16, slope=3.0, intercept=7, window=False)
    D.import_dicom(tmp_path/"r.dcm", tmp_path/"out")
    got = np.stack([load_image(f, grey=True) for f in frames_of(tmp_path/"out")])
    want = D.synthetic_frames(3, 32).astype(float)
    assert got.min() == 0 and got.max() == 255 and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.999
    assert json.loads((tmp_path/"out"/D.MANIFEST).read_text())["videos"][0]["window"] == "min-max of the run"


def test_single_frame_series_in_instance_order(tmp_path):
    files = D.synthetic_run(tmp_path/"s", n=4, size=32, single_frame=True, sop="xrf")
    for i, f in enumerate(files): f.rename(f.with_name(f"z{9 - i}.dcm"))   # file names in reverse order
    r = D.import_dicom(tmp_path/"s", tmp_path/"out")
    man = r["manifest"]["videos"][0]
    assert r["videos"] == 1 and [f["frame"] for f in man["frames"]] == [1, 2, 3, 4] and man["modality"] == "RF"
    got = [load_image(tmp_path/"out"/f["file"], grey=True) for f in man["frames"]]
    assert all(close(g, w) for g, w in zip(got, D.synthetic_frames(4, 32)))


def test_structured_report_is_refused_naming_the_file(tmp_path, capsys):
    D.synthetic_report(tmp_path/"only"/"sr.dcm")
    rc, out, err = run(capsys, tmp_path/"only", tmp_path/"o1")
    assert rc == 1 and err.startswith("error: ") and "sr.dcm" in err and "Comprehensive SR" in err and not (tmp_path/"o1").exists()
    D.synthetic_run(tmp_path/"mix"/"run.dcm", n=2, size=32); D.synthetic_report(tmp_path/"mix"/"sr.dcm")
    rc, out, err = run(capsys, tmp_path/"mix", tmp_path/"o2")
    assert rc == D.EXIT_SKIPPED and f"skipped {tmp_path/'mix'/'sr.dcm'}: a Comprehensive SR Storage object, not an image" in err
    assert len(frames_of(tmp_path/"o2")) == 2


def test_truncated_file_is_skipped_and_the_others_kept(tmp_path, capsys):
    a = D.synthetic_run(tmp_path/"src"/"a.dcm", n=3, size=32, seed=1)[0]
    b = D.synthetic_run(tmp_path/"src"/"b.dcm", n=4, size=32, seed=2)[0]
    b.write_bytes(b.read_bytes()[:-500])
    (tmp_path/"src"/"c.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")   # a header cut after the marker
    rc, out, err = run(capsys, tmp_path/"src", tmp_path/"out")
    assert rc == D.EXIT_SKIPPED and "skipped" in err and "b.dcm" in err and "c.dcm" in err
    assert "truncated" in err and len(frames_of(tmp_path/"out")) == 3
    man = json.loads((tmp_path/"out"/D.MANIFEST).read_text())
    assert man["skipped"]["n"] == 2 and "b.dcm" not in json.dumps(man)


def test_every_and_frames_keep_the_original_numbers(tmp_path, capsys):
    D.synthetic_run(tmp_path/"r.dcm", n=12, size=32)
    rc, out, err = run(capsys, tmp_path/"r.dcm", tmp_path/"out", "--frames", "3:10", "--every", "3")
    assert rc == 0, err
    man = json.loads((tmp_path/"out"/D.MANIFEST).read_text())
    assert [f["frame"] for f in man["videos"][0]["frames"]] == [3, 6, 9]
    assert [f.name[-8:] for f in frames_of(tmp_path/"out")] == ["0003.png", "0006.png", "0009.png"]
    assert close(load_image(frames_of(tmp_path/"out")[1], grey=True), D.synthetic_frames(12, 32)[5])
    for bad, msg in (("--frames=9:3", "expected 1 <= A <= B"), ("--frames=x", "expected A:B"), ("--every=0", "--every 0")):
        rc, out, err = run(capsys, tmp_path/"r.dcm", tmp_path/"bad", bad)
        assert rc == 1 and msg in err and not (tmp_path/"bad").exists()
    rc, out, err = run(capsys, tmp_path/"r.dcm", tmp_path/"bad", "--frames", "20:30")
    assert rc == 1 and "only 12 frames" in err


def test_jpeg_decodes_and_a_missing_decoder_is_named(tmp_path, capsys):
    from pydicom.uid import JPEGLSLossless
    j = D.synthetic_run(tmp_path/"j"/"j.dcm", n=2, size=32, jpeg=True)[0]
    D.import_dicom(j, tmp_path/"o1")
    assert close(load_image(frames_of(tmp_path/"o1")[0], grey=True), D.synthetic_frames(2, 32)[0], tol=12)
    ds = D.read_dicom(j, pixels=True); ds.file_meta.TransferSyntaxUID = JPEGLSLossless; ds.save_as(j)
    rc, out, err = run(capsys, j, tmp_path/"o2")
    assert rc == 1 and "j.dcm" in err and "JPEG-LS" in err and "pylibjpeg" in err


def test_missing_decoder_is_named_when_pydicom_reports_one_unavailable(tmp_path, monkeypatch):
    "JPEG baseline with its decoder reported missing (as on a machine without Pillow's JPEG): the message names the plugins."
    import pydicom.pixels
    class NoDecoder:
        is_available, missing_dependencies = False, ["pillow - requires pillow", "pylibjpeg - requires pylibjpeg>=2.0"]
    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: NoDecoder())
    j = D.synthetic_run(tmp_path/"j.dcm", n=2, size=32, jpeg=True)[0]
    with pytest.raises(D.DicomError, match="no decoder for it is installed; install one of: pillow"): D.import_dicom(j, tmp_path/"o")


def test_burned_in_text_is_refused_unless_allowed(tmp_path, capsys):
    f = D.synthetic_run(tmp_path/"b.dcm", n=2, size=32)[0]
    ds = D.read_dicom(f, pixels=True); ds.BurnedInAnnotation = "YES"; ds.save_as(f)
    rc, out, err = run(capsys, f, tmp_path/"o1")
    assert rc == 1 and "BurnedInAnnotation" in err and "--allow-burned-in" in err
    rc, out, err = run(capsys, f, tmp_path/"o2", "--allow-burned-in")
    assert rc == 0 and json.loads((tmp_path/"o2"/D.MANIFEST).read_text())["pixels_burned_in_allowed"] is True


def test_no_planted_detail_in_any_output_and_mapping_only_on_request(tmp_path, capsys):
    D.synthetic_run(tmp_path/"src"/"run.dcm", n=3, size=32, patient=PLANTED)
    D.synthetic_run(tmp_path/"src"/"ser", n=3, size=32, single_frame=True, patient=PLANTED, seed=3)
    rc, out, err = run(capsys, tmp_path/"src", tmp_path/"out")
    assert rc == 0, err
    files = [p for p in (tmp_path/"out").rglob("*") if p.is_file()]
    blob = b"".join(p.read_bytes() + p.name.encode() for p in files) + (out + err).encode()
    for v in PLANTED.values():
        for form in {v, v.replace("^", " "), v.split("^")[0]}: assert form.encode() not in blob, form
    man = json.loads((tmp_path/"out"/D.MANIFEST).read_text())
    assert {"PatientName", "PatientID", "PatientBirthDate", "StudyDate", "InstitutionName", "AccessionNumber"} <= set(man["removed"])
    assert man["mapping_written"] is False and not any("map" in p.name for p in files)
    rc, out, err = run(capsys, tmp_path/"src", tmp_path/"o2", "--mapping", tmp_path/"o2"/"map.json")
    assert rc == 1 and "inside the output folder" in err and not (tmp_path/"o2").exists()
    rc, out, err = run(capsys, tmp_path/"src", tmp_path/"o2", "--mapping", tmp_path/"private"/"map.json", "--salt", "s1")
    m = json.loads((tmp_path/"private"/"map.json").read_text())
    assert rc == 0 and {r["PatientID"] for r in m["runs"].values()} == {"ZZ-991177"} and m["salt"] == "s1"
    assert (tmp_path/"private"/"map.json").stat().st_mode & 0o077 == 0
    assert set(m["runs"]) == {v["video"] for v in json.loads((tmp_path/"o2"/D.MANIFEST).read_text())["videos"]}


def test_check_lists_the_unlabelled_frames(tmp_path):
    D.synthetic_run(tmp_path/"r.dcm", n=4, size=32)
    D.import_dicom(tmp_path/"r.dcm", tmp_path/"out")
    r = check(tmp_path/"out")
    assert r.exit_code == 0 and r.counts() == {"unannotated_image": 4} and r.entries == 0


def test_command_line_exit_codes(tmp_path):
    D.synthetic_run(tmp_path/"src"/"a.dcm", n=2, size=32); (tmp_path/"src"/"junk.dcm").write_bytes(b"junk")
    p = subprocess.run([sys.executable, "-m", "vessel_nb.dicom", str(tmp_path/"src"), str(tmp_path/"out")], capture_output=True, text=True)
    assert p.returncode == D.EXIT_SKIPPED and "junk.dcm: not a DICOM file" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "vessel_nb.dicom", str(tmp_path/"nowhere"), str(tmp_path/"o2")], capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.startswith("error: ") and "nowhere" in p.stderr
    p = subprocess.run([sys.executable, "-m", "vessel_nb.dicom", str(tmp_path/"src")], capture_output=True, text=True)
    assert p.returncode == 2


def test_the_import_can_be_a_sub_command_of_another_command_line(tmp_path, capsys):
    "`add_dicom_parser` + `cmd`: how `python -m vessel_nb.dataset import dicom SRC OUT` offers the same import."
    import argparse
    D.synthetic_run(tmp_path/"r.dcm", n=4, size=32)
    p = argparse.ArgumentParser(prog="python -m vessel_nb.dataset"); fmts = p.add_subparsers(dest="fmt")
    D.add_dicom_parser(fmts)
    a = p.parse_args(["dicom", str(tmp_path/"r.dcm"), str(tmp_path/"out"), "--every", "2"])
    assert a.fmt == "dicom" and D.cmd(a) == 0 and len(frames_of(tmp_path/"out")) == 2
    assert "imported 1 run(s), 2 frames" in capsys.readouterr().out


def test_enhanced_object_reads_rescale_and_window_from_its_shared_functional_groups(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    f = D.synthetic_run(tmp_path/"r.dcm", n=3, size=32, bits=16, slope=2.0, intercept=-100)[0]
    ds = D.read_dicom(f, pixels=True)
    voi, pvt, fg = Dataset(), Dataset(), Dataset()
    voi.WindowCenter, voi.WindowWidth, pvt.RescaleSlope, pvt.RescaleIntercept = ds.WindowCenter, ds.WindowWidth, ds.RescaleSlope, ds.RescaleIntercept
    fg.FrameVOILUTSequence, fg.PixelValueTransformationSequence = Sequence([voi]), Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([fg])
    for k in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"): delattr(ds, k)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1.1"   # Enhanced XA
    ds.save_as(f)
    r = D.import_dicom(f, tmp_path/"out")
    got = np.stack([load_image(p, grey=True) for p in frames_of(tmp_path/"out")])
    v = r["manifest"]["videos"][0]
    assert close(got, D.synthetic_frames(3, 32)) and v["rescale"] == [2.0, -100.0] and v["window"] != "min-max of the run"
    assert v["sop_class"] == "Enhanced XA Image Storage"
