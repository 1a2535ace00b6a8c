"Whole-video segmentation with SAM2's memory (`vessel_nb.model.propagate`, `VesselPredictor.predict_video`) on CPU."
import contextlib, io, tempfile

import cv2
import numpy as np
import pytest
import torch

from vessel_nb.core import UserError
from vessel_nb.model import (MemoryBank, VesselPredictor, build_model, build_sam, get_config, propagate, sam2_yaml)

torch.set_num_threads(1)   # 2 shared cores


def sam2_reference(sam, cfg, frames, key, mask):
    "Logits `{t: (1, s, s)}` of sam2's own `SAM2VideoPredictor` (same hydra config, same weights): mask on `key`, backwards then forwards."
    from sam2.build_sam import build_sam2_video_predictor
    yaml, over = sam2_yaml(cfg.sam2, cfg.data.sam_size)
    vp = build_sam2_video_predictor(yaml, None, device="cpu", mode="eval", hydra_overrides_extra=over, apply_postprocessing=False)
    vp.load_state_dict(sam.state_dict())
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()):
        for i in range(len(frames)): cv2.imwrite(f"{d}/{i:05d}.jpg", np.zeros((8, 8, 3), np.uint8))
        st = vp.init_state(d)                                   # sam2 1.1 reads JPEG folders or MP4 only
        st["images"], st["cached_features"] = frames, {}         # swap in the very same input tensors
        st["video_height"] = st["video_width"] = sam.image_size // 4
        vp.add_new_mask(st, key, 1, mask)
        ref = {t: m[:, 0] for t, _, m in vp.propagate_in_video(st, start_frame_idx=key, reverse=True)}
        ref.update({t: m[:, 0] for t, _, m in vp.propagate_in_video(st, start_frame_idx=key)})
    return ref


def ours(sam, frames, key, mask, bank=None):
    with torch.no_grad():
        return {t: lg for t, _, lg in propagate(sam, (frames[i:i + 1] for i in range(len(frames))), lambda t: mask[None, None],
                                                [key], len(frames), bank)}


@pytest.mark.parametrize("T,key", [(24, 5), (20, 0), (6, 2)])
def test_propagation_equals_sam2_video_predictor(T, key):
    torch.manual_seed(T)
    cfg = get_config("tiny"); sam = build_sam(cfg).eval()
    with torch.no_grad(): sam.sam_mask_decoder.pred_obj_score_head.layers[-1].bias += 20   # else a random head may hide the object
    frames = torch.randn(T, 3, 128, 128)
    mask = torch.zeros(128, 128, dtype=torch.bool); mask[40:90, 30:100] = True
    ref, got = sam2_reference(sam, cfg, frames, key, mask), ours(sam, frames, key, mask)
    assert sorted(got) == sorted(ref) == list(range(T))
    assert min(ref[t].max().item() for t in range(T)) > -100, "the object is hidden on some frame: the check would be empty"
    diff = max((got[t] - ref[t]).abs().max().item() for t in range(T))
    assert diff <= 1e-4, f"max |logit difference| {diff:.2e} to sam2's video predictor"
    if T >= 20:                                 # the check can fail: a bank that forgets too early gives other logits
        short = MemoryBank(sam, T); short.window = 2
        early = ours(sam, frames, key, mask, short)
        assert max((early[t] - ref[t]).abs().max().item() for t in range(T)) > 1e-4


def test_memory_bank_does_not_grow():
    cfg = get_config("tiny"); sam = build_sam(cfg).eval()
    bank, sizes = MemoryBank(sam), []
    mask = torch.zeros(1, 1, 128, 128); mask[..., 30:80, 30:80] = 1
    frames = (torch.randn(1, 3, 128, 128) for _ in range(40))
    with torch.no_grad():
        for t, _, lg in propagate(sam, frames, lambda t: mask, [0], None, bank): sizes.append(len(bank))
    assert len(sizes) == 40 and max(sizes) == sizes[-1] == 1 + bank.window + 1, sizes


@pytest.fixture(scope="module")
def predictor():
    return VesselPredictor(build_model("tiny", device="cpu"), answer="Sure, [SEG].")


def test_predict_video_modes(predictor):
    rng = np.random.default_rng(0)
    video = [rng.integers(0, 255, (60, 80), dtype=np.uint8) for _ in range(5)]
    per, prop = list(predictor.predict_video(video, mode="per_frame")), list(predictor.predict_video(video, key_frames=[2]))
    assert len(per) == len(prop) == 5 and prop[3].prob.shape == (60, 80)
    np.testing.assert_allclose(prop[2].prob, per[2].prob, atol=1e-5)     # the key frame as a single image
    assert not np.allclose(prop[3].prob, per[3].prob, atol=1e-3)          # other frames come from memory
    with pytest.raises(UserError, match="use one of"): predictor.predict_video(video, mode="track")
    with pytest.raises(UserError, match="at least one frame index"): predictor.predict_video(video, key_frames=[])


def test_predict_video_streams(predictor):
    read = []
    def frames():
        for i in range(30): read.append(i); yield np.full((40, 40), i, np.uint8)
    gen = predictor.predict_video(frames(), prefetch=2)
    first = next(gen)
    assert first.prob.shape == (40, 40) and len(read) <= 4, f"{len(read)} frames read before the first prediction"
    assert sum(1 for _ in gen) == 29 and len(read) == 30


def test_clip_training_reaches_the_memory():
    "A clip batch: losses on every frame; gradients reach SAM2's memory parts when `sam_memory` trains; one [SEG] per clip."
    from vessel_nb.model import TINY_TRAIN, Collator
    from vessel_nb.testing import fake_sample
    cfg = get_config("tiny", train=TINY_TRAIN + ["sam_memory"]); model = build_model(cfg, device="cpu")
    b = Collator(model.tokenizer, cfg)([fake_sample(cfg, 1), fake_sample(cfg, 1, seed=1)])
    b.update(clip_images=torch.randn(2, 3, 3, 128, 128), clip_masks=torch.cat(b["masks"])[:, None].expand(2, 3, 128, 128))
    out = model.clip_forward(b); out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["loss_obj"] > 0
    assert model.sam.memory_encoder.out_proj.weight.grad is not None and model.sam.sam_mask_decoder.pred_obj_score_head.layers[0].weight.grad is not None
    frozen = build_model("tiny", device="cpu")
    assert frozen.groups()["sam_memory"][1] == 0 and model.groups()["sam_memory"][1] == model.groups()["sam_memory"][0]
    with pytest.raises(UserError, match="one \\[SEG\\] per clip"):
        model.clip_forward(dict(Collator(model.tokenizer, cfg)([fake_sample(cfg, 2)]), clip_images=torch.randn(1, 2, 3, 128, 128), clip_masks=torch.zeros(1, 2, 128, 128)))


def test_clip_pipeline_from_a_data_folder():
    "VideoClips + collate_clips + Collator give clip_forward its batch: the wiring a training loop uses for clip training."
    from pathlib import Path
    from vessel_nb.core import DataError
    from vessel_nb.dataset import VesselDataset, VideoClips, collate_clips, Augment
    from vessel_nb.model import TINY_TRAIN, Collator
    cfg = get_config("tiny", train=TINY_TRAIN + ["sam_memory"]); model = build_model(cfg, device="cpu")
    sample = Path(__file__).resolve().parents[1]/"data"/"sample"
    clips = VideoClips(VesselDataset(sample, "train", cfg.data), frames=3)
    batch = collate_clips(Collator(model.tokenizer, cfg), [clips[0], clips[len(clips) - 1]])
    assert batch["clip_images"].shape == (2, 3, 3, 128, 128) and batch["clip_masks"].shape == (2, 3, 128, 128)
    out = model.clip_forward(batch); out["loss"].backward()
    assert torch.isfinite(out["loss"])
    with pytest.raises(DataError, match="no video of this split has 999"): VideoClips(clips.ds, frames=999)
    with pytest.raises(DataError, match="random augmentation"): VideoClips(VesselDataset(sample, "train", cfg.data, augment=Augment()), frames=2)
