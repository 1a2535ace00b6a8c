"""`vessel_nb.eval` with the real tiny neural model: a training checkpoint (written by `vessel_nb.checkpoint.save_checkpoint`),
the checkpoint sweep, an exported folder (`vessel_nb.model.save_pretrained`), and the leakage refusal from `meta.json`."""
import csv, json
from dataclasses import asdict

import pytest

import vessel_nb.model as vm
import shutil
from vessel_nb.dataset import data_fingerprint, split_fingerprints, training_set, load_split, TRAINING_SET_FILE
from vessel_nb.datatools import synth, split_data
from vessel_nb.eval import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vessel_nb.train import TrainConfig
    from vessel_nb.checkpoint import save_checkpoint
    d = tmp_path_factory.mktemp("evalmodel")
    synth(d/"data", videos=3, frames=2, size=64, seed=1); split_data(d/"data", val=0.34, test=0.34)
    model = vm.build_model("tiny", device="cpu")
    meta = dict(config=asdict(TrainConfig(preset="tiny", data=str(d/"data"))), identity=model.identity(),
                data_fingerprint=data_fingerprint(d/"data"), split_fingerprints=split_fingerprints(d/"data"))
    record = training_set(d/"data", load_split(d/"data", "train"))
    for it in (1, 2):
        save_checkpoint(d/"work", it, model.trainable_state_dict(), dict(meta, iter=it), {}, [], {}, training_set=record)
    leaky = training_set(d/"data", load_split(d/"data", "train") + load_split(d/"data", "val")[:1])  # trained on a val image
    save_checkpoint(d/"leaky", 1, model.trainable_state_dict(), dict(meta, iter=1), {}, [], {}, training_set=leaky)
    vm.save_pretrained(model, d/"export")
    return d


def run(capsys, *args):
    rc = main(["--no-progress", "--batch-size", "2", *map(str, args)]); o = capsys.readouterr()
    return rc, o.out, o.err


def test_checkpoint_eval(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_2", "--data", d/"data", "--out", d/"o1", "--save-probs")
    assert rc == 0, err
    m = json.loads((d/"o1"/"metrics.json").read_text())
    assert m["model"]["kind"] == "checkpoint" and m["model"]["iter"] == 2 and m["model"]["preset"] == "tiny"
    assert m["leakage"] == "clean" and m["threshold_source"] == "val curve" and m["split"] == "test"
    assert m["overlap"]["n"] == 0 and m["overlap"]["n_training"] == len(load_split(d/"data", "train"))
    assert m["prompt"] == "Please segment the blood vessel." and 0 <= m["accuracy"] <= 1
    assert len(list((d/"o1"/"probs").iterdir())) == m["n_images"]


def test_checkpoint_on_its_training_split_is_refused(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_1", "--data", d/"data", "--split", "train", "--out", d/"o2")
    assert rc == 1 and "are in the model's training set" in err and "--allow-overlap" in err and not (d/"o2").exists()


def test_checkpoint_sweep(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--checkpoints", d/"work", "--data", d/"data", "--out", d/"o3", "--no-cldice")
    assert rc == 0, err
    rows = list(csv.DictReader(open(d/"o3"/"checkpoints.csv")))
    assert [r["iter"] for r in rows] == ["1", "2"] and sum(r["best"] == "True" for r in rows) == 1
    j = json.loads((d/"o3"/"checkpoints.json").read_text())
    assert j["split"] == "val" and j["best"] in ("iter_1", "iter_2") and "best checkpoint on val" in out
    assert {r["leakage"] for r in j["rows"]} == {"clean"}


def test_checkpoint_sweep_refuses_overlap_with_val(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--checkpoints", d/"leaky", "--data", d/"data", "--out", d/"o3b", "--no-cldice")
    assert rc == 1 and "1 of the" in err and "'val' images are in the model's training set" in err and not (d/"o3b").exists()
    rc, out, err = run(capsys, "--checkpoints", d/"leaky", "--data", d/"data", "--out", d/"o3b", "--no-cldice", "--allow-overlap")
    j = json.loads((d/"o3b"/"checkpoints.json").read_text())
    assert rc == 0 and j["rows"][0]["leakage"] == "overlap" and j["rows"][0]["overlap_n"] == 1


def test_exported_model(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o4", "--threshold", "0.5", "--no-cldice")
    assert rc == 1 and "no training_set.json" in err and "--allow-unknown-training-set" in err  # a bare save_pretrained has no record
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o4", "--threshold", "0.5", "--no-cldice", "--allow-unknown-training-set")
    assert rc == 0, err
    m = json.loads((d/"o4"/"metrics.json").read_text())
    assert m["model"]["kind"] == "exported" and m["leakage"] == "unknown" and m["leakage_acknowledged"] is True
    assert ("has no checksums.json" in err) != (d/"export"/"checksums.json").is_file()  # unverifiable: a warning line


def test_fixed_answer(setup, capsys):
    "--answer scores a fixed answer in one pass: every image gets a mask (a random model rarely generates [SEG])."
    d = setup
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o5", "--threshold", "0.5", "--no-cldice",
                       "--answer", "Sure, [SEG].", "--allow-unknown-training-set")
    assert rc == 0, err
    m = json.loads((d/"o5"/"metrics.json").read_text())
    assert m["answer"] == "Sure, [SEG]." and m["no_seg"] == 0
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o6", "--answer", "Sure.")
    assert rc == 2 and "has no [SEG]" in err and not (d/"o6").exists()


@pytest.mark.parametrize("damage,message", [
    (lambda c: (c/"trainable.safetensors").write_bytes((c/"trainable.safetensors").read_bytes()[:100]), "trainable.safetensors changed or truncated"),
    (lambda c: (c/"meta.json").write_text("{broken"), "meta.json changed or truncated"),
    (lambda c: (c/TRAINING_SET_FILE).unlink(), f"{TRAINING_SET_FILE} missing"),
    (lambda c: (c/"checksums.json").write_text("[1, 2"), "checksums.json: damaged"),
])
def test_damaged_checkpoint_is_named(setup, capsys, tmp_path, damage, message):
    ck = tmp_path/"iter_2"; shutil.copytree(setup/"work"/"iter_2", ck); damage(ck)
    rc, out, err = run(capsys, "--model", ck, "--data", setup/"data", "--out", tmp_path/"o")
    assert rc == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err and not (tmp_path/"o").exists()


@pytest.mark.parametrize("damage,message", [
    (lambda c: (c/"trainable.safetensors").write_bytes((c/"trainable.safetensors").read_bytes()[:100]), "trainable.safetensors: unreadable"),
    (lambda c: (c/"meta.json").write_text("{broken"), "meta.json: unreadable"),
    (lambda c: (c/"meta.json").write_text("[]"), "meta.json: not a JSON object"),
])
def test_damaged_old_checkpoint_without_checksums(setup, capsys, tmp_path, damage, message):
    ck = tmp_path/"iter_2"; shutil.copytree(setup/"work"/"iter_2", ck); (ck/"checksums.json").unlink(); damage(ck)
    rc, out, err = run(capsys, "--model", ck, "--data", setup/"data", "--out", tmp_path/"o")
    lines = err.strip().splitlines()
    assert rc == 1 and lines[0].startswith("warning: ") and "no checksums.json" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("error: ") and message in lines[1] and "Traceback" not in err


def test_video_eval(setup, capsys):
    "`--video`: every test video segmented per frame and propagated; video.csv and metrics.json 'video'; the baseline is refused."
    d = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_2", "--data", d/"data", "--out", d/"ov", "--video", "--answer", "Sure, [SEG].", "--no-cldice")
    assert rc == 0, err
    m = json.loads((d/"ov"/"metrics.json").read_text())
    rows = list(csv.DictReader(open(d/"ov"/"video.csv")))
    assert [r["mode"] for r in rows] == ["per_frame", "propagate"] * m["n_videos"] and all(r["frames"] == "2" for r in rows)
    assert set(m["video"]["modes"]) == {"per_frame", "propagate"} and m["video"]["modes"]["propagate"]["n_videos"] == m["n_videos"]
    assert 0 <= m["video"]["modes"]["propagate"]["dice"] <= 1 and m["video"]["key_frames"] == [0]
    rc, out, err = run(capsys, "--model", "frangi", "--data", d/"data", "--out", d/"ov2", "--video")
    assert rc == 2 and "--video True: segments whole videos with a neural model" in err and not (d/"ov2").exists()
