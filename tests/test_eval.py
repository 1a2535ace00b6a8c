"Metric correctness (hand fixtures + scikit-learn), the threshold rule and the empty-mask policy of `vessel_nb.metrics`."
import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from vessel_nb.metrics import (METRICS, SegMetrics, ThresholdCurve, LeakageError, binarize, choose_threshold, cldice,
                               confusion_counts, segmentation_metrics, skeleton_counts, summarize)


def sk_reference(p, g, zd):
    "Independent per-image metrics from scikit-learn (`zero_division` = the empty-mask policy)."
    y, x = g.ravel(), p.ravel()
    jac = np.nan if np.isnan(zd) and not (x | y).any() else skm.jaccard_score(y, x, zero_division=0 if np.isnan(zd) else zd)
    return [skm.f1_score(y, x, zero_division=zd), jac, skm.precision_score(y, x, zero_division=zd),
            skm.recall_score(y, x, zero_division=zd), skm.recall_score(y, x, pos_label=0, zero_division=zd),
            skm.accuracy_score(y, x)]


@pytest.mark.parametrize("empty,zd", [("nan", np.nan), ("one", 1.0), ("zero", 0.0)])
def test_metrics_match_sklearn(empty, zd):
    rng = np.random.default_rng(42)
    P, G = rng.random((24, 64, 48)) < rng.uniform(0.01, 0.5, (24, 1, 1)), rng.random((24, 64, 48)) < 0.1
    P[0] = G[0] = False; P[1] = False; G[2] = False; G[3] = True  # both empty, no prediction, no vessel, all vessel
    m = segmentation_metrics(torch.from_numpy(P), G, empty)  # torch input accepted
    for i in range(len(P)):
        np.testing.assert_allclose([m[k][i] for k in METRICS], sk_reference(P[i], G[i], zd), atol=1e-6, equal_nan=True)


def test_pooled_matches_sklearn_on_all_pixels():
    rng = np.random.default_rng(0)
    P, G = rng.random((10, 32, 32)) < 0.2, rng.random((10, 32, 32)) < 0.2
    agg = SegMetrics(cldice=False).update(P, G).aggregate()
    ref = sk_reference(P, G, np.nan)
    np.testing.assert_allclose([agg[f"{k}_pooled"] for k in METRICS], ref, atol=1e-6)
    per = segmentation_metrics(P, G)["dice"]
    assert agg["dice"] == pytest.approx(per.mean(), abs=1e-12) and agg["dice_std"] == pytest.approx(per.std(ddof=1), abs=1e-12)


def test_hand_fixtures_2x2_4x4():
    p, g = np.array([[1, 1], [0, 0]], bool), np.array([[1, 0], [1, 0]], bool)
    assert confusion_counts(p, g).tolist() == [[1, 1, 1, 1]]
    m = segmentation_metrics(p, g)
    assert [round(float(m[k][0]), 12) for k in ("dice", "iou", "precision", "recall", "specificity", "accuracy")] == \
        [0.5, round(1/3, 12), 0.5, 0.5, 0.5, 0.5]
    # 4x4: 3 of 4 vessel pixels found, 1 false positive -> dice 6/8, iou 3/5, spec 11/12
    g4 = np.zeros((4, 4), bool); g4[1] = True
    p4 = g4.copy(); p4[1, 3] = False; p4[3, 0] = True
    m = segmentation_metrics(p4, g4)
    assert m["dice"][0] == pytest.approx(0.75) and m["iou"][0] == pytest.approx(0.6)
    assert m["specificity"][0] == pytest.approx(11/12) and m["accuracy"][0] == pytest.approx(14/16)


def test_cldice_hand_and_topology():
    row = np.zeros((4, 4), bool); row[1] = True
    half = np.zeros((4, 4), bool); half[1, :2] = True
    assert skeleton_counts(row, half).tolist() == [[2, 4, 2, 2]]
    assert cldice(row, half)[0] == pytest.approx(2/3)
    # a gap in a long vessel: pixel Dice stays high, clDice drops more (topology sensitivity)
    g = np.zeros((9, 40), bool); g[3:6, :] = True
    p = g.copy(); p[:, 18:22] = False
    assert cldice(p, g)[0] < segmentation_metrics(p, g)["dice"][0]
    z = np.zeros((1, 4, 4), bool)
    assert np.isnan(cldice(z, z)[0]) and cldice(z, z, "one")[0] == 1.0 and cldice(z, z, "zero")[0] == 0.0


def test_empty_policy_excludes_undefined_from_mean():
    z = np.zeros((4, 4), bool); v = np.zeros((4, 4), bool); v[0, 0] = True
    agg = SegMetrics().update(np.stack([z, v]), np.stack([z, v])).aggregate()
    assert agg["dice"] == 1.0 and agg["dice_n"] == 1 and agg["n_images"] == 2
    assert SegMetrics("one").update(np.stack([z, v]), np.stack([z, v])).aggregate()["dice_n"] == 2
    with pytest.raises(ValueError, match="use one of"): SegMetrics("ignore")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"pred: values outside \{0, 1\}"): segmentation_metrics(np.full((2, 2), 0.5), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="mask > 127"): segmentation_metrics(np.zeros((2, 2)), np.full((2, 2), 255))
    with pytest.raises(ValueError, match="shape"): segmentation_metrics(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 3), bool))


def test_threshold_curve_equals_binarized_metrics():
    rng = np.random.default_rng(3)
    probs = rng.random((6, 20, 20)).astype(np.float32); probs[0, 0, :5] = [0.0, 0.25, 0.5, 0.75, 1.0]
    gts = rng.random((6, 20, 20)) < 0.3
    tab = ThresholdCurve("val", 4).update(probs, gts).table()
    for k, t in enumerate(tab["threshold"]):
        ref = segmentation_metrics(binarize(probs, t), gts)
        for c in ("dice", "iou", "precision", "recall"):
            assert tab[c][k] == pytest.approx(np.nanmean(ref[c]), abs=1e-12, nan_ok=True)


def test_threshold_rule_never_tunes_on_reported_split():
    rng = np.random.default_rng(1)
    probs, gts = rng.random((3, 8, 8)).astype(np.float32), rng.random((3, 8, 8)) < 0.4
    val = ThresholdCurve("val", 10).update(probs, gts)
    assert choose_threshold(val, "test").source == "val curve"
    with pytest.raises(LeakageError, match="split being reported"): choose_threshold(val, "val")
    for report in ("test", "val", "train"):
        with pytest.raises(LeakageError, match="only ever reported"): choose_threshold(ThresholdCurve("test").update(probs, gts), report)


def _cimat():
    from pathlib import Path
    for base in (Path(__file__).resolve().parents[1], *Path(__file__).resolve().parents[1].parents):
        if (base/"shared"/"data"/"cimat_angios_80").is_dir(): return base/"shared"/"data"/"cimat_angios_80"
    pytest.skip("../shared/data/cimat_angios_80 not found (public test data absent)")


@pytest.mark.data
def test_frangi_baseline_on_cimat_reproduces_reported_numbers():
    "The fitted scales (3, 4, 5, 6) with the train-curve threshold give the Dice reported in 09_eval on the test half."
    from vessel_nb.eval import FrangiBaseline, read_mask_pairs, run_split
    d = _cimat()
    train, test = read_mask_pairs(d/"Angios_40_training"), read_mask_pairs(d/"Angios_40_testing")
    assert len(train) == len(test) == 40
    model = FrangiBaseline()  # default scales = the ones fit_frangi chose on the training half
    _, curve = run_split(model, train, curve=ThresholdCurve("train"), progress=False)
    ch = choose_threshold(curve, "test")
    assert ch.threshold == pytest.approx(0.18) and ch.source == "train curve"
    met, _ = run_split(model, test, ch.threshold, SegMetrics(cldice=False), progress=False)
    agg = met.aggregate()
    assert agg["dice"] == pytest.approx(0.7127, abs=5e-4) and agg["iou"] == pytest.approx(0.5560, abs=5e-4)
    assert agg["accuracy"] == pytest.approx(0.9664, abs=5e-4)
