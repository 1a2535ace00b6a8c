"""`vessel_nb.eval` with the real tiny neural model: a training checkpoint (written by `vessel_nb.train.save_checkpoint`),
the checkpoint sweep, an exported folder (`vessel_nb.model.save_pretrained`), and the leakage refusal from `meta.json`."""
import csv, json
from dataclasses import asdict

import pytest

vm = pytest.importorskip("vessel_nb.model", reason="vessel_nb.model is not available yet")
from vessel_nb.dataset import synth, split_data, data_fingerprint, split_fingerprints
from vessel_nb.eval import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vessel_nb.train import TrainConfig, save_checkpoint
    d = tmp_path_factory.mktemp("evalmodel")
    synth(d/"data", videos=3, frames=2, size=64, seed=1); split_data(d/"data", val=0.34, test=0.34)
    model = vm.build_model("tiny", device="cpu")
    meta = dict(config=asdict(TrainConfig(preset="tiny", data=str(d/"data"))), identity=model.identity(),
                data_fingerprint=data_fingerprint(d/"data"), split_fingerprints=split_fingerprints(d/"data"))
    for it in (1, 2):
        save_checkpoint(d/"work", it, model.trainable_state_dict(), dict(meta, iter=it), {}, {}, [], {})
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
    assert m["prompt"] == "Please segment the blood vessel." and 0 <= m["accuracy"] <= 1
    assert len(list((d/"o1"/"probs").iterdir())) == m["n_images"]


def test_checkpoint_on_its_training_split_is_refused(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_1", "--data", d/"data", "--split", "train", "--out", d/"o2")
    assert rc == 2 and "exactly the model's training split" in err and not (d/"o2").exists()


def test_checkpoint_sweep(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--checkpoints", d/"work", "--data", d/"data", "--out", d/"o3", "--no-cldice")
    assert rc == 0, err
    rows = list(csv.DictReader(open(d/"o3"/"checkpoints.csv")))
    assert [r["iter"] for r in rows] == ["1", "2"] and sum(r["best"] == "True" for r in rows) == 1
    j = json.loads((d/"o3"/"checkpoints.json").read_text())
    assert j["split"] == "val" and j["best"] in ("iter_1", "iter_2") and "best checkpoint on val" in out


def test_exported_model(setup, capsys):
    d = setup
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o4", "--threshold", "0.5", "--no-cldice")
    assert rc == 0, err
    m = json.loads((d/"o4"/"metrics.json").read_text())
    assert m["model"]["kind"] == "exported" and m["leakage"] == "unknown"  # a bare save_pretrained carries no data provenance


def test_fixed_answer(setup, capsys):
    "--answer scores a fixed answer in one pass: every image gets a mask (a random model rarely generates [SEG])."
    d = setup
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o5", "--threshold", "0.5", "--no-cldice",
                       "--answer", "Sure, [SEG].")
    assert rc == 0, err
    m = json.loads((d/"o5"/"metrics.json").read_text())
    assert m["answer"] == "Sure, [SEG]." and m["no_seg"] == 0
    rc, out, err = run(capsys, "--model", d/"export", "--data", d/"data", "--out", d/"o6", "--answer", "Sure.")
    assert rc == 2 and "has no [SEG]" in err and not (d/"o6").exists()
