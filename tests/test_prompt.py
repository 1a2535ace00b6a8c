"""Prompts from the data: `eval`, the checkpoint sweep and `load_eval_model` ask a model about the description it was
trained on (its `training_set.json` texts), say so on the console and in metrics.json; `--prompt` overrides; a record
without texts falls back to the default and says so. And the Frangi baseline's fit is bounded, recorded and shown."""
import json
from dataclasses import asdict

import pytest

import vessel_nb.model as vm
from vessel_nb.dataset import data_fingerprint, split_fingerprints, training_set, load_split, prompt_for, DEFAULT_TEXT
from vessel_nb.datatools import synth, split_data
from vessel_nb.eval import main, load_eval_model, playground
from vessel_nb.dataset import DEFAULT_PROMPT


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    "A data folder whose objects are all described as 'stenosis', checkpoints trained on it, and one whose record has no texts."
    from vessel_nb.train import TrainConfig
    from vessel_nb.checkpoint import save_checkpoint
    d = tmp_path_factory.mktemp("prompt")
    synth(d/"data", videos=3, frames=2, size=64, seed=1, text="stenosis"); split_data(d/"data", val=0.34, test=0.34)
    model = vm.build_model("tiny", device="cpu")
    meta = dict(config=asdict(TrainConfig(preset="tiny", data=str(d/"data"))), identity=model.identity(),
                data_fingerprint=data_fingerprint(d/"data"), split_fingerprints=split_fingerprints(d/"data"))
    record = training_set(d/"data", load_split(d/"data", "train"))   # what training writes into every checkpoint
    assert record["texts"] == {"stenosis": record["texts"]["stenosis"]} and record["texts"]["stenosis"] > 0
    for it in (1, 2): save_checkpoint(d/"work", it, model.trainable_state_dict(), dict(meta, iter=it), {}, [], {}, training_set=record)
    old = {k: v for k, v in record.items() if k != "texts"}   # a record written before texts were recorded
    save_checkpoint(d/"old", 1, model.trainable_state_dict(), dict(meta, iter=1), {}, [], {}, training_set=old)
    return d, record["texts"]["stenosis"]


def run(capsys, *args):
    rc = main(["--no-progress", "--batch-size", "2", "--threshold", "0.5", "--no-cldice", *map(str, args)]); o = capsys.readouterr()
    return rc, o.out, o.err


def prompt_lines(out): return [l for l in out.splitlines() if l.startswith("prompt: ")]


def test_default_prompt_is_one_source():
    assert DEFAULT_PROMPT == prompt_for(DEFAULT_TEXT) == "Please segment the blood vessel."


def test_eval_asks_for_the_training_text(setup, capsys):
    d, n = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_2", "--data", d/"data", "--out", d/"o1")
    assert rc == 0, err
    assert prompt_lines(out) == [f'prompt: "Please segment the stenosis." (from the model\'s training data: stenosis ×{n:,})']
    m = json.loads((d/"o1"/"metrics.json").read_text())
    assert (m["prompt"], m["prompt_source"], m["prompt_texts"]) == ("Please segment the stenosis.", "training", {"stenosis": n})


def test_prompt_flag_overrides(setup, capsys):
    d, _ = setup
    rc, out, err = run(capsys, "--model", d/"work"/"iter_2", "--data", d/"data", "--out", d/"o2", "--prompt", "Segment the narrowing.")
    assert rc == 0, err
    assert prompt_lines(out) == ['prompt: "Segment the narrowing." (given with --prompt)']
    m = json.loads((d/"o2"/"metrics.json").read_text())
    assert (m["prompt"], m["prompt_source"]) == ("Segment the narrowing.", "--prompt")


def test_record_without_texts_falls_back_and_says_so(setup, capsys):
    d, _ = setup
    rc, out, err = run(capsys, "--model", d/"old"/"iter_1", "--data", d/"data", "--out", d/"o3")
    assert rc == 0, err
    [line] = prompt_lines(out)
    assert line.startswith('prompt: "Please segment the blood vessel." (the default: ') and "names no texts" in line and "--prompt" in line
    m = json.loads((d/"o3"/"metrics.json").read_text())
    assert (m["prompt"], m["prompt_source"], m["prompt_texts"]) == (DEFAULT_PROMPT, "default", {})


def test_sweep_uses_the_same_prompt(setup, capsys):
    d, n = setup
    rc, out, err = run(capsys, "--checkpoints", d/"work", "--data", d/"data", "--out", d/"o4")
    assert rc == 0, err
    assert prompt_lines(out) == [f'prompt: "Please segment the stenosis." (from the model\'s training data: stenosis ×{n:,})']  # once: it does not change
    j = json.loads((d/"o4"/"checkpoints.json").read_text())
    assert (j["prompt"], j["prompt_source"]) == ("Please segment the stenosis.", "training")
    assert [(r["checkpoint"], r["prompt"]) for r in j["rows"]] == [("iter_1", "Please segment the stenosis."), ("iter_2", "Please segment the stenosis.")]
    progress = [l for l in out.splitlines() if l.startswith("iter_")]
    assert [l.split(":")[0] for l in progress] == ["iter_1 (1/2)", "iter_2 (2/2)"] and all("s left" in l for l in progress)


def test_playground_starts_with_the_training_prompt(setup):
    d, _ = setup
    model, _ = load_eval_model(str(d/"work"/"iter_2"), device="cpu")
    assert (model.prompt, model.prompt_source) == ("Please segment the stenosis.", "training")
    from vessel_nb.eval import EvalSplit
    pg = playground(model, EvalSplit(d/"data", "val"))
    assert pg.controls["prompt"].value == "Please segment the stenosis."


def test_frangi_fit_is_bounded_recorded_and_shown(tmp_path, capsys):
    d = tmp_path/"data"
    synth(d, videos=8, frames=3, size=48, seed=2); split_data(d, val=0.25, test=0.25)
    n_train, out = len(load_split(d, "train")), []
    for k in (1, 2):
        rc = main(["--data", str(d), "--out", str(tmp_path/f"f{k}"), "--fit-images", "3", "--workers", "1", "--no-cldice"]); o = capsys.readouterr()
        assert rc == 0, o.err
        out.append(o)
    m = json.loads((tmp_path/"f1"/"metrics.json").read_text())
    assert n_train > 3 and (m["model"]["fit_images"], m["model"]["fit_of"], m["model"]["fit_videos"], m["model"]["fit_seed"]) == (3, n_train, 3, 0)
    assert m["overlap"]["n_training"] == 3 and m["prompt"] is None and m["prompt_source"] is None
    line = [l for l in out[0].out.splitlines() if l.startswith("Frangi baseline: ")]
    assert len(line) == 1 and f"fitted on 3 of {n_train} training images from 3 of " in line[0] and "(seed 0)" in line[0]
    assert f"fit Frangi scales on 3 train images" in out[0].err and "100%" in out[0].err   # the fit's progress bar (stderr)
    m2 = json.loads((tmp_path/"f2"/"metrics.json").read_text())
    assert m2["model"]["fit_dice"] == m["model"]["fit_dice"] and m2["dice"] == m["dice"]   # the seeded sample: the same fit every run
