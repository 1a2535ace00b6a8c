"""The synthetic angiogram generator (`vessel_nb.synth`): deterministic, annotated where the vessels are drawn, with
thin branches, wash-in, motion and a catheter that is not in the mask."""
import json
import numpy as np
import pytest
from skimage.morphology import skeletonize
import cv2

from vessel_nb.dataset import rasterize, load_annotations
from vessel_nb.synth import SynthConfig, angio_video, synth, tube_chords, coronary_tree, branch_polygon

STILL = dict(photons=(1e7, 1e7))   # no quantum noise: two renders differ only where the scene differs


def _video(seed=0, frames=8, size=256, **kw):
    return angio_video(np.random.default_rng([seed, 0]), size, frames, SynthConfig(**kw))


def _masks(video, size=256):
    return [rasterize(p, size, size) for _, p in video]


def test_same_seed_same_folder_other_seed_other_folder(tmp_path):
    a, b, c = (synth(tmp_path/n, videos=2, frames=3, size=96, seed=s) for n, s in (("a", 7), ("b", 7), ("c", 8)))
    assert a == b and a != c
    name = a[0]["image"]
    assert (tmp_path/"a"/name).read_bytes() == (tmp_path/"b"/name).read_bytes()
    assert load_annotations(tmp_path/"a") == a and len(a) == 6


def test_catheter_is_drawn_but_not_annotated():
    "Same scene with and without the catheter: the polygons are identical; the pixels the catheter darkens lie outside the mask."
    with_c, without = _video(1, catheter=1.0, **STILL), _video(1, catheter=0.0, **STILL)
    assert [p for _, p in with_c] == [p for _, p in without]
    img_c, img, m = with_c[3][0].astype(int), without[3][0].astype(int), _masks(with_c)[3]
    cath = (img - img_c) > 15                        # pixels the catheter darkens clearly
    assert cath.sum() > 200, "the catheter must be visible"
    assert (cath & (m > 0)).sum() < 0.1 * cath.sum(), "catheter pixels are annotated as vessel"


def test_thin_branches_exist():
    "Some of the annotated centre line is at most 2 px wide (the distal branches)."
    m = _masks(_video(2, frames=1))[0]
    skel = skeletonize(m > 0)
    width = 2 * cv2.distanceTransform(m, cv2.DIST_L2, 5)[skel]   # local width along the skeleton
    assert (width <= 2.0).mean() > 0.15, f"only {(width <= 2).mean():.0%} of the centre line is thin"
    assert width.max() >= 5, "and the proximal vessel is wide"


def _contrast(img, m):
    "Mean grey level of a ring just outside the vessels minus the mean grey level inside them."
    ring = cv2.dilate(m, np.ones((7, 7), np.uint8)) - m
    return img[ring > 0].mean() - img[m > 0].mean()


def test_wash_in_first_frame_has_less_contrast():
    v = _video(3, frames=16)
    ms = _masks(v)
    c0, c8 = _contrast(v[0][0].astype(float), ms[0]), _contrast(v[8][0].astype(float), ms[8])
    assert 0 < c0 < 0.8 * c8, (c0, c8)


def test_heart_moves_smoothly():
    ms = _masks(_video(4, frames=8))
    ious = [((a & b).sum() / (a | b).sum()) for a, b in zip(ms, ms[1:])]
    assert all(i < 0.995 for i in ious[:4]), f"the tree does not move: IoU {ious}"
    assert min(ious) > 0.3 and np.mean(ious) > 0.5, f"consecutive frames jump: IoU {ious}"


def test_polygons_are_where_the_vessels_are_drawn():
    "The annotation rasterized by the project's rasterizer matches the drawn vessel (chord map) with high IoU."
    rng = np.random.default_rng(5)
    tree = coronary_tree(rng, 256, ((128, 128), 150), (40, 60), 0.6)
    m = rasterize([branch_polygon(p, w, 256) for p, w in tree], 256, 256) > 0
    drawn = tube_chords(tree, 256) > 0.5
    iou = (m & drawn).sum() / (m | drawn).sum()
    assert iou > 0.85, iou
    shifted = tube_chords([(p + 2.0, w) for p, w in tree], 256) > 0.5   # the test can fail: a 2-px offset is caught
    assert (m & shifted).sum() / (m | shifted).sum() < 0.5


def test_any_frame_count_and_size():
    v = _video(6, frames=20, size=160)
    assert len(v) == 20 and v[0][0].shape == (160, 160) and v[0][0].dtype == np.uint8
    assert len(_video(6, frames=1)) == 1


@pytest.mark.parametrize("size", [16, 48])
def test_tiny_images_pass_the_data_check(tmp_path, size):
    "The sizes the test suites use: a valid folder (check finds no error) whose frames all show vessels."
    from vessel_nb.dataset import check, entry_mask
    e = synth(tmp_path/"d", videos=3, frames=2, size=size, seed=0)
    assert check(tmp_path/"d").exit_code == 0
    assert all(entry_mask(x, size, size).any() for x in e)
