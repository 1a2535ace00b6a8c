"The paired comparison with the baseline: right verdict on constructed cases, the right unit (videos or images), the same answer every run, and refusals that say what to fix."
import csv, io
import numpy as np
import pytest
from vessel_nb.metrics import compare_paired, MetricsError, VERDICTS

def rows(values, videos):
    "per_image.csv rows as `csv.DictReader` gives them (every value a string)."
    text = "name,video,dice\n" + "".join(f"{v}_f{i},{v},{float(x)!r}\n" for i, (x, v) in enumerate(zip(values, videos)))
    return list(csv.DictReader(io.StringIO(text)))

def pair(shift, n_videos=10, frames=4, noise=0.03, seed=0):
    r = np.random.default_rng(seed)
    vids = [f"v{i}" for i in range(n_videos) for _ in range(frames)]
    base = r.uniform(0.4, 0.8, len(vids))
    return rows(base + shift + r.normal(0, noise, len(vids)), vids), rows(base, vids)

@pytest.mark.parametrize("shift,want", [(0.08, "better"), (-0.08, "worse"), (0.0, "no significant difference")])
def test_verdict(shift, want):
    c = compare_paired(*pair(shift))
    assert c.verdict == want and c.unit == "videos" and c.n == 10 and c.n_images == 40
    assert want in c.sentence() and "over 10 videos" in c.sentence() and "beats" not in c.sentence()
    if want != VERDICTS[2]: assert (c.ci_low > 0) == (want == "better") and (c.ci_high < 0) == (want == "worse")

def test_both_views_must_agree():
    "A chance gap whose bootstrap interval misses 0 while p >= 0.05 is not called significant."
    c = compare_paired(*pair(0.0, seed=0))
    assert c.ci_low > 0 and c.p >= 0.05 and c.verdict == "no significant difference"

def test_images_are_the_unit_without_videos_and_the_result_is_seeded():
    a, b = pair(0.05, n_videos=20, frames=1)
    c = compare_paired(a, b)
    assert c.unit == "images" and c.n == 20 and "over 20 images" in c.sentence()
    assert compare_paired(a, b) == c and compare_paired(a, b, seed=1).ci_low != c.ci_low

def test_few_videos_are_never_significant():
    c = compare_paired(*pair(0.2, n_videos=3))
    assert c.verdict == VERDICTS[2] and "6 or more are needed" in c.sentence()

def test_undefined_images_are_left_out():
    a, b = pair(0.0, n_videos=6)
    a[0]["dice"] = "nan"
    c = compare_paired(a, b)
    assert (c.n_images, c.left_out) == (23, 1)

def test_different_images_are_refused():
    a, b = pair(0.0)
    with pytest.raises(MetricsError, match="only in A: v0_f0; only in B: none"): compare_paired(a, b[1:])
    with pytest.raises(MetricsError, match="appears twice"): compare_paired(a + a[:1], b)
