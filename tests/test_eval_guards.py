"""Hostile inputs for `python -m vessel_nb.eval`: train/test overlap (hand-edited splits, renamed copies, re-splits),
invalid entries in the scored split, outputs that collide with the inputs, and invalid flag values."""
import json, shutil

import pytest

from vessel_nb.core import write_json, OUTPUT_MARKER
from vessel_nb.dataset import load_split, load_annotations, training_set, display_name, dataset_salt, image_path
from vessel_nb.datatools import synth, split_data
from vessel_nb.eval import main, leakage_record, LeakageError


@pytest.fixture
def data(tmp_path):
    d = tmp_path/"data"
    synth(d, videos=4, frames=2, size=64, seed=0)
    split_data(d, val=0.25, test=0.25)
    return d


def run(capsys, *args):
    rc = main(["--no-progress", "--no-cldice", "--workers", "1", *map(str, args)]); o = capsys.readouterr()
    assert "Traceback" not in o.err
    return rc, o.out, o.err


def edit_splits(d, **changes):
    sp = json.loads((d/"splits.json").read_text()); sp.update(changes); write_json(d/"splits.json", sp, indent=1)


def shown(d, name): return display_name(name, salt=dataset_salt(d))


# --- leakage: the evaluated images against the model's training record ---

def test_hand_edited_overlap_is_refused_and_named(data, tmp_path, capsys):
    train, test = load_split(data, "train"), load_split(data, "test")
    edit_splits(data, test=test + train[:1])   # a training image also listed under test
    rc, _, err = run(capsys, "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "1 of the 3 evaluated 'test' images are in the model's training set" in err and "--allow-overlap" in err
    assert shown(data, train[0]) in err and train[0] not in err   # the pseudonym, never the real name
    assert not (tmp_path/"o").exists()
    rc, out, err = run(capsys, "--data", data, "--out", tmp_path/"o", "--allow-overlap")
    m = json.loads((tmp_path/"o"/"metrics.json").read_text())
    assert rc == 0 and m["leakage"] == "overlap" and m["leakage_acknowledged"] is True
    assert m["overlap"]["n"] == 1 and m["overlap"]["images"] == [shown(data, train[0])] and m["overlap"]["flag"] == "--allow-overlap"


def test_renamed_copy_of_a_training_image_is_caught_by_pixels(data, tmp_path, capsys):
    train, test = load_split(data, "train"), load_split(data, "test")
    entry = next(e for e in load_annotations(data) if e["image"] == train[0])
    copy = "Zed Renamed(1)_9-9_9_DEADBEEF_frame_000001.png"
    shutil.copy(image_path(data, train[0]), image_path(data, train[0]).with_name(copy))
    write_json(data/"annotations.json", load_annotations(data) + [dict(entry, image=copy)])
    edit_splits(data, test=test + [copy])
    rc, _, err = run(capsys, "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "0 by name, 1 by pixels" in err and shown(data, copy) in err


def test_record_from_an_earlier_split_catches_a_re_split(data):
    "A model trained before a re-split: the new test split holds some of its training images."
    old_train = load_split(data, "train"); record = training_set(data, old_train)
    for seed in range(1, 50):
        split_data(data, val=0.25, test=0.25, seed=seed, overwrite=True)
        hit = set(load_split(data, "test")) & set(old_train)
        if hit: break
    test = load_split(data, "test")
    with pytest.raises(LeakageError, match=f"{len(hit)} of the {len(test)} evaluated 'test' images are in the model's training set"):
        leakage_record(record, data, "test", test)
    r = leakage_record(record, data, "test", test, allow_overlap=True)
    assert r["leakage"] == "overlap" and sorted(r["overlap"]["by_name"]) == sorted(shown(data, n) for n in hit)


def test_unknown_training_set_is_refused_unless_allowed(data):
    with pytest.raises(LeakageError, match="no training_set.json.*--allow-unknown-training-set"):
        leakage_record(None, data, "test", load_split(data, "test"))
    r = leakage_record(None, data, "test", load_split(data, "test"), allow_unknown=True)
    assert r["leakage"] == "unknown" and r["leakage_acknowledged"] is True and r["overlap"]["n"] is None


def test_frangi_record_is_its_fit_sample(data, tmp_path, capsys):
    rc, _, err = run(capsys, "--data", data, "--out", tmp_path/"o", "--fit-images", "2")
    m = json.loads((tmp_path/"o"/"metrics.json").read_text())
    assert rc == 0 and m["model"]["fit_images"] == 2 and m["overlap"]["n_training"] == 2 and m["leakage"] == "clean"
    assert m["model"]["fit_sample"].startswith("2 of ")


# --- invalid entries in the scored split ---

def test_invalid_test_entry_is_refused_or_excluded(data, tmp_path, capsys):
    test = load_split(data, "test")
    ann = load_annotations(data)
    for e in ann:
        if e["image"] == test[0]: e["mask"][0] = [-5.0, 1.0, 30.0, 1.0, 30.0, 20.0]   # a negative coordinate
    write_json(data/"annotations.json", ann)
    rc, _, err = run(capsys, "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "1 'test' image(s) fail the data check" in err and shown(data, test[0]) in err
    assert "negative_coordinate" in err and "--exclude-invalid" in err and not (tmp_path/"o").exists()
    rc, out, err = run(capsys, "--data", data, "--out", tmp_path/"o", "--exclude-invalid")
    m = json.loads((tmp_path/"o"/"metrics.json").read_text())
    assert rc == 0 and m["n_images"] == len(test) - 1 and m["excluded_n"] == 1
    assert m["excluded"] == [dict(image=shown(data, test[0]), split="test", reason=m["excluded"][0]["reason"])]
    assert "negative_coordinate" in m["excluded"][0]["reason"] and "excluded 1 invalid" in out


def test_missing_image_in_tuning_split_is_refused(data, tmp_path, capsys):
    val = load_split(data, "val")
    image_path(data, val[0]).unlink()
    rc, _, err = run(capsys, "--data", data, "--out", tmp_path/"o")
    assert rc == 1 and "'val' image(s) fail the data check" in err and "missing_image" in err


# --- the output folder against the inputs ---

def test_output_may_not_collide_with_inputs(data, tmp_path, capsys):
    before = sorted(p.name for p in data.iterdir())
    rc, _, err = run(capsys, "--data", data, "--out", data, "--overwrite")
    assert rc == 1 and "the output folder is the input" in err
    rc, _, err = run(capsys, "--data", data, "--out", data/"eval", "--overwrite")
    assert rc == 1 and "lies inside the input" in err
    model = tmp_path/"runs"/"export"; model.mkdir(parents=True)
    rc, _, err = run(capsys, "--model", model, "--data", data, "--out", tmp_path/"runs", "--overwrite")
    assert rc == 1 and "contains the input" in err
    assert sorted(p.name for p in data.iterdir()) == before and model.is_dir()   # nothing touched


def test_overwrite_replaces_only_our_own_folder(data, tmp_path, capsys):
    foreign = tmp_path/"mine"; foreign.mkdir(); (foreign/"notes.txt").write_text("keep")
    rc, _, err = run(capsys, "--data", data, "--out", foreign, "--overwrite")
    assert rc == 1 and "not written by vessel_nb" in err and (foreign/"notes.txt").read_text() == "keep"
    out = tmp_path/"o"
    assert run(capsys, "--data", data, "--out", out, "--threshold", "0.3")[0] == 0 and (out/OUTPUT_MARKER).is_file()
    rc, _, err = run(capsys, "--data", data, "--out", out, "--threshold", "0.4", "--overwrite")
    assert rc == 0, err
    assert json.loads((out/"metrics.json").read_text())["threshold"] == 0.4


# --- every flag validated: message, exit status 2, nothing written ---

@pytest.mark.parametrize("flags,message", [
    (["--n-bins", "0"], "--n-bins 0: must be an integer from 2"),
    (["--n-bins", "1"], "--n-bins 1: must be an integer from 2"),
    (["--n-bins", "1000001"], "--n-bins 1000001"),
    (["--threshold", "1.5"], "--threshold 1.5: must be a number in [0, 1]"),
    (["--threshold", "-0.1"], "--threshold -0.1"),
    (["--threshold", "nan"], "--threshold nan"),
    (["--batch-size", "0"], "--batch-size 0: must be an integer >= 1"),
    (["--workers", "0"], "--workers 0: must be an integer >= 1"),
    (["--fit-images", "0"], "--fit-images 0: must be an integer >= 1"),
    (["--prompt", " "], "--prompt ' ': must be a non-empty text"),
    (["--answer", "Sure."], "--answer 'Sure.': has no [SEG]"),
    (["--model", ""], "--model '': give 'frangi'"),
    (["--out", ""], "--out '': must be a non-empty path"),
    (["--checkpoints", "w", "--split", "test"], "'val' only"),
])
def test_invalid_flag_values_are_refused(data, tmp_path, capsys, flags, message):
    args = ["--data", data, "--out", tmp_path/"o", *flags] if "--out" not in flags else ["--data", data, *flags]
    rc, _, err = run(capsys, *args)
    assert rc == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path/"o").exists()


@pytest.mark.parametrize("flags", [["--batch-size", "x"], ["--n-bins", "2.5"], ["--split", "dev"], ["--empty", "ignore"]])
def test_unparsable_flags_exit_2(data, tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as e: main(["--data", str(data), "--out", str(tmp_path/"o"), *flags])
    assert e.value.code == 2 and "invalid" in capsys.readouterr().err
