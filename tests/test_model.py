"End-to-end tests of `vessel_nb.model` on CPU with the tiny preset."
import json, re, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vessel_nb.core import KeyMismatch, UserError
from vessel_nb.model import (SA2VA_TRAIN, TINY_TRAIN, Collator, VesselPredictor, build_model, get_config,
                             internvl_config, load, param_group, save_pretrained, tiny_tokenizer, random_vlm,
                             load_sam2_checkpoint, build_sam)
from vessel_nb.testing import fake_sample, overfit, roundtrip_dice

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)   # 2 shared cores: one thread is much faster under contention


def sa2va_tiny(**kw):
    "Tiny dims with the Sa2VA training policy (LoRA, [SEG] rows, projector, head, SAM2 decoder)."
    return get_config("tiny", train=SA2VA_TRAIN, lora_r=4, lora_alpha=8, **kw)


def batch_of(model, counts=(2, 1)):
    return Collator(model.tokenizer, model.cfg)([fake_sample(model.cfg, n, seed=i) for i, n in enumerate(counts)])


def test_overfit_one_batch():
    model = build_model("tiny", device="cpu")
    losses = overfit(model, batch_of(model), steps=50)
    assert losses[-1] <= 0.2 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}: fell less than 80%"


def test_forward_backward_time_one_sample():
    model = build_model("tiny", device="cpu")
    b = batch_of(model, (1,))
    model(b)["loss"].backward()   # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); model(b)["loss"].backward(); times.append(time.perf_counter() - t0)
    assert min(times) < 0.5, f"tiny forward+backward took {min(times):.3f} s"


@pytest.mark.parametrize("train,seg_rows,expected", [
    (TINY_TRAIN, "tokens", set(TINY_TRAIN)),
    (SA2VA_TRAIN, "tokens", {"projector", "lora", "seg_token", "seg_head", "sam_decoder"}),
    (SA2VA_TRAIN, "full", {"projector", "lora", "seg_token", "seg_head", "sam_decoder"}),
])
def test_exactly_the_trainable_parameters_get_gradients(train, seg_rows, expected):
    model = build_model(get_config("tiny", train=train, seg_rows=seg_rows, lora_r=4, lora_alpha=8), device="cpu")
    groups = model.groups()
    print({g: f"{n:,} total, {t:,} trainable" for g, (n, t) in sorted(groups.items())})
    assert {g for g, (_, t) in groups.items() if t} == expected
    model(batch_of(model))["loss"].backward()
    wrong = [(n, p.requires_grad, p.grad is not None) for n, p in model.named_parameters() if p.requires_grad != (p.grad is not None)]
    assert not wrong, wrong[:10]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(".vision_tower." in n and ".lora_" in n for n in model.state_dict()), "LoRA must not touch the vision tower"
    if "lora" in train:
        lora = [n for n in names if param_group(n) == "lora"]
        assert len(lora) == 2 * 7 * 2 and all(".language_model." in n for n in lora)
        seg = {n: tuple(p.shape) for n, p in model.named_parameters() if param_group(n) == "seg_token"}
        H, V = 64, len(model.tokenizer)
        assert sorted(seg.values()) == ([(1, H), (1, H)] if seg_rows == "tokens" else [(V, H), (V, H)]), seg


def test_seg_row_training_changes_only_the_seg_row():
    model = build_model(sa2va_tiny(), device="cpu")
    emb = lambda: model.core.get_input_embeddings()(torch.arange(len(model.tokenizer))[None])[0].detach().clone()
    before = emb(); overfit(model, batch_of(model), steps=2); after = emb()
    changed = (before != after).any(1).nonzero()[:, 0].tolist()
    assert changed == [model.seg_id]


def test_predictor_shapes_types_and_batch():
    model = build_model("tiny", device="cpu"); overfit(model, batch_of(model, (1,)), steps=40)
    p = VesselPredictor(model, threshold=0.5)
    grey = np.random.default_rng(0).integers(0, 255, (33, 47), dtype=np.uint8)
    r = p.predict(grey)
    assert isinstance(r.text, str) and "[SEG]" in r.text and not r.warning
    assert r.prob.shape == (33, 47) and r.prob.dtype == np.float32 and r.mask.dtype == np.bool_
    assert 0.0 <= r.prob.min() and r.prob.max() <= 1.0
    assert np.array_equal(r.mask, r.prob > 0.5)
    assert r.probs.shape[0] == r.text.count("[SEG]")
    rgb = np.repeat(grey[..., None], 3, 2)
    rs = p.predict_batch([rgb, np.zeros((20, 20), np.uint8)])
    assert [x.prob.shape for x in rs] == [(33, 47), (20, 20)]
    np.testing.assert_allclose(rs[0].prob, r.prob, atol=1e-4)   # grey == its RGB copy; batch == single


def test_no_seg_generated_is_an_empty_result_with_a_warning():
    model = build_model("tiny", device="cpu")
    model.seg_id = -1   # the model can never produce [SEG]
    r = VesselPredictor(model, max_new_tokens=3).predict(np.zeros((12, 18), np.uint8))
    assert r.prob.shape == (12, 18) and not r.mask.any() and r.probs.shape == (0, 12, 18)
    assert "no [SEG] generated" in r.warning


def test_sample_without_seg_has_no_mask_loss():
    model = build_model("tiny", device="cpu")
    qa = fake_sample(model.cfg, 0)
    qa["segments"] = [("<|im_start|>user\n<image>\nIs this an angiogram?<|im_end|>\n<|im_start|>assistant\n", False), ("Yes.<|im_end|>", True)]
    out = model(Collator(model.tokenizer, model.cfg)([qa, fake_sample(model.cfg, 1)]))
    assert out["loss_mask"] > 0   # the other sample still supervises its mask
    out = model(Collator(model.tokenizer, model.cfg)([qa]))
    assert out["loss_mask"].item() == 0.0 and out["loss_dice"].item() == 0.0 and out["loss_llm"] > 0


def test_load_trainable_refusals():
    model = build_model(sa2va_tiny(), device="cpu")
    sd = model.trainable_state_dict()
    model.load_trainable(sd)
    k = next(iter(sd))
    with pytest.raises(KeyMismatch, match="1 missing: " + re.escape(k)): model.load_trainable({n: v for n, v in sd.items() if n != k})
    with pytest.raises(KeyMismatch, match="1 unexpected: sam.extra"): model.load_trainable({**sd, "sam.extra": torch.zeros(1)})
    with pytest.raises(KeyMismatch, match="1 with other shapes: seg_head.2.weight"): model.load_trainable({**sd, "seg_head.2.weight": torch.zeros(256, 65)})
    with pytest.raises(ValueError, match="hidden_size: 6144 vs model 64"): model.check_identity({**model.identity(), "hidden_size": 6144})


def local_internvl(folder, cfg, tok):
    "A tiny InternVL written in transformers' native layout, like a user's local weights folder."
    vlm = random_vlm(internvl_config(cfg, tok))
    vlm.save_pretrained(folder); tok.save_pretrained(folder)
    return vlm


def test_local_weights_load_strictly(tmp_path):
    cfg, tok = get_config("tiny"), tiny_tokenizer()
    vlm = local_internvl(tmp_path / "ok", cfg, tok)
    model = build_model(get_config("tiny", llm=str(tmp_path / "ok")), device="cpu")
    w = model.core.model.language_model.layers[0].mlp.up_proj.weight
    assert torch.equal(w, vlm.model.language_model.layers[0].mlp.up_proj.weight)
    # hidden size of another architecture (the 26B-into-8B pitfall)
    with pytest.raises(ValueError, match="hidden size 64 does not match preset 'tiny' \\(hidden size 128\\)"):
        build_model(get_config("tiny", llm=str(tmp_path / "ok"), hidden_size=128), device="cpu")
    # a missing tensor
    f = tmp_path / "ok" / "model.safetensors"; w = load_file(f)
    w.pop("multi_modal_projector.linear_1.bias"); save_file(w, f)   # (transformers writes its own checkpoint key layout)
    with pytest.raises(ValueError, match="missing_keys: model.multi_modal_projector.linear_1.bias"):
        build_model(get_config("tiny", llm=str(tmp_path / "ok")), device="cpu")


def test_tokenizer_mismatch_refused(tmp_path):
    cfg, tok = get_config("tiny"), tiny_tokenizer()
    local_internvl(tmp_path / "m", cfg, tok)
    other = tiny_tokenizer(vocab_size=400); other.add_tokens([f"<x{i}>" for i in range(200)]); other.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="tokenizer mismatch"):
        build_model(get_config("tiny", llm=str(tmp_path / "m")), device="cpu")


def test_real_preset_without_weights_says_what_to_do(monkeypatch):
    monkeypatch.setenv("VESSEL_NB_PATHS_INTERNVL3_8B", "")
    with pytest.raises(ValueError, match="set paths.internvl3_8b in settings.ini"):
        build_model("internvl3-8b", device="cpu")


def test_sam2_checkpoint_strict(tmp_path):
    cfg = get_config("tiny"); sam = build_sam(cfg)
    sd = sam.state_dict(); sd["sam_mask_decoder.conv_s0.weight"] = torch.zeros(1)
    torch.save({"model": sd}, tmp_path / "s.pt")
    with pytest.raises(KeyMismatch, match="1 with other shapes: sam_mask_decoder.conv_s0.weight"):
        load_sam2_checkpoint(sam, tmp_path / "s.pt")
    with pytest.raises(FileNotFoundError, match="paths.sam2_hiera_large"):
        load_sam2_checkpoint(sam, tmp_path / "none.pt")


def test_model_errors_are_user_errors(tmp_path):
    "Every refusal of the model is a UserError (one `error:` line from a command) and keeps its builtin base."
    from vessel_nb.model import ModelError, ModelFileMissing, ModelExists
    for cls, base in ((ModelError, ValueError), (ModelFileMissing, FileNotFoundError), (ModelExists, FileExistsError), (KeyMismatch, ValueError)):
        assert issubclass(cls, UserError) and issubclass(cls, base), cls
    with pytest.raises(ModelFileMissing): load_sam2_checkpoint(build_sam(get_config("tiny")), tmp_path / "none.pt")
    with pytest.raises(ModelError, match="unknown preset"): get_config("internvl3-26b")


def test_save_load_roundtrip_and_refusals(tmp_path):
    model = build_model(sa2va_tiny(), device="cpu"); overfit(model, batch_of(model), steps=3)
    img = np.random.default_rng(2).integers(0, 255, (40, 52), dtype=np.uint8)
    ref = VesselPredictor(model, max_new_tokens=6).predict(img)
    save_pretrained(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="never overwritten"): save_pretrained(model, tmp_path / "m")
    conf = json.loads((tmp_path / "m" / "config.json").read_text())
    assert conf["identity"]["hidden_size"] == 64 and conf["model_config"]["train"] == []
    back = load(tmp_path / "m", device="cpu")
    assert not any(p.requires_grad for p in back.parameters())
    got = VesselPredictor(back, max_new_tokens=6).predict(img)
    assert got.text == ref.text
    np.testing.assert_allclose(got.prob, ref.prob, atol=1e-4)
    # loading in a fresh interpreter needs neither peft nor the training code
    code = ("import sys; sys.modules['peft'] = None; sys.modules['vessel_nb.train'] = None\n"
            f"from vessel_nb.model import load; m = load({str(tmp_path / 'm')!r}, device='cpu'); print(type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "VesselSa2VA" in out.stdout, out.stderr[-2000:]
    # tampering is refused by name
    f = tmp_path / "m" / "model.safetensors"; w = load_file(f); w["sam.extra"] = torch.zeros(1); save_file(w, f)
    with pytest.raises(ValueError, match="model.safetensors changed or truncated"): load(tmp_path / "m", device="cpu")
    with pytest.raises(KeyMismatch, match="1 unexpected: sam.extra"): load(tmp_path / "m", device="cpu", verify=False)
    conf["identity"]["tokenizer_sha"] = "0" * 16; (tmp_path / "m" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(ValueError, match="tokenizer_sha"): load(tmp_path / "m", device="cpu", verify=False)


def test_bf16_on_cpu():
    model = build_model(sa2va_tiny(), device="cpu", dtype=torch.bfloat16)
    out = model(batch_of(model)); out["loss"].backward()
    assert torch.isfinite(out["loss"])
    r = VesselPredictor(model, max_new_tokens=3).predict(np.zeros((10, 10), np.uint8))
    assert r.prob.dtype == np.float32


def test_gradient_checkpointing_same_loss():
    model = build_model(sa2va_tiny(), device="cpu"); model.eval()   # eval: no LoRA dropout, comparable losses
    b = batch_of(model)
    a = model(b)["loss"].item()
    model.gradient_checkpointing_enable(); model.train(); model.eval()
    loss = model(b)["loss"]; loss.backward()
    assert abs(loss.item() - a) < 1e-4


def test_roundtrip_dice_on_cimat():
    root = ROOT.parent / "shared" / "data" / "cimat_angios_80"
    if not root.is_dir(): pytest.skip(f"{root} not found (public test data, see ../shared/data/README.md)")
    import cv2
    gts = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) > 127 for f in sorted(root.glob("*/*_gt.png"))[:10]]
    cfg = get_config("internvl3-8b")
    assert min(roundtrip_dice(g, cfg.data.mask_size) for g in gts) >= 0.95   # the chosen supervision keeps vessels


def test_gpu_smoke_script_runs_tiny_on_cpu():
    out = subprocess.run([sys.executable, "bench/model_gpu_smoke.py", "--preset", "tiny", "--device", "cpu", "--steps", "2"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for s in ("parameters", "trainable", "sam_decoder", "step time", "peak memory", "loss"): assert s in out.stdout, out.stdout


# ---------------------------------------------------------------- hostile inputs: texts, lengths, damaged folders

@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny", device="cpu")


@pytest.mark.parametrize("text,tokens", [("the <image> vessel", "<image>"), ("artery<|im_end|>", "<|im_end|>"),
                                         ("<img> and </img>", "</img>, <img>"), ("<|im_start|>system", "<|im_start|>"),
                                         ("x<|endoftext|><video>", "<video>, <|endoftext|>")])
def test_reserved_tokens_in_a_description_are_refused(tiny, text, tokens):
    from vessel_nb.dataset import chat_segments, display_name, DataError
    from vessel_nb.model import ModelError
    s = fake_sample(tiny.cfg); s["image"] = "Alex Sample(2553448773)_1-3_1_5CE60A1F_frame_000013.png"
    with pytest.raises(DataError, match="a token the model reserves"): chat_segments(["blood vessel", text], tiny.cfg.data)
    # chat_segments refuses it first; the Collator refuses it too, whatever built the chat (the second object's description)
    s["segments"] = [(t.replace("artery", text), a) for t, a in chat_segments(["blood vessel", "artery"], tiny.cfg.data)]
    with pytest.raises(ModelError) as e: Collator(tiny.tokenizer, tiny.cfg)([s])
    msg = str(e.value)
    assert f"contains reserved token(s) {tokens}, the model's own markup; remove them" in msg, msg
    assert f"image {display_name(s['image'])}:" in msg and "Alex" not in msg      # named by pseudonym only


def test_seg_in_a_question_and_a_missing_image_are_refused(tiny):
    from vessel_nb.model import ModelError
    s = fake_sample(tiny.cfg)
    s["segments"] = [("<|im_start|>user\n<image>\nwhere is [SEG]?<|im_end|>\n<|im_start|>assistant\n", False), ("[SEG].<|im_end|>", True)]
    with pytest.raises(ModelError, match=r"the text 'where is \[SEG\]\?' contains reserved token\(s\) \[SEG\]"): Collator(tiny.tokenizer, tiny.cfg)([s])
    s["segments"] = [("<|im_start|>user\nwhere?<|im_end|>\n<|im_start|>assistant\n", False), ("[SEG].<|im_end|>", True)]
    with pytest.raises(ModelError, match="has no <image> placeholder"): Collator(tiny.tokenizer, tiny.cfg)([s])
    s["segments"] = [("<|im_start|>user\n<image>\nwhere?<|im_end|>\n<|im_start|>assistant\n", False), ("[SEG] and [SEG].<|im_end|>", True)]
    Collator(tiny.tokenizer, tiny.cfg)([s])          # the templates' own markup and [SEG]s in answers are fine
    with pytest.raises(ModelError, match="prompt: the text 'a <image>' contains reserved token"):
        VesselPredictor(tiny).predict(np.zeros((8, 8), np.uint8), "a <image>")


def test_a_sample_over_max_length_names_the_limit_and_what_to_do(tiny):
    from vessel_nb.model import ModelError
    with pytest.raises(ModelError) as e: Collator(tiny.tokenizer, tiny.cfg, max_length=30)([fake_sample(tiny.cfg)])
    msg = str(e.value)
    assert "1 image tile(s) × 16 + " in msg and "exceed the Collator's max_length 30" in msg, msg
    assert "lower DataConfig.max_tiles (now 4)" in msg and "larger max_length" in msg


@pytest.mark.parametrize("damage,expected", [
    ("flip", "model.safetensors changed or truncated"), ("truncate", "model.safetensors changed or truncated"),
    ("delete", "tokenizer.json missing"), ("config", "config.json changed or truncated"),
    ("truncate-old", "model.safetensors: unreadable"), ("config-old", "config.json: unreadable"),
    ("delete-old", "model.safetensors: missing")])
def test_damaged_model_folder_is_refused_by_name(tiny, tmp_path, damage, expected, capsys):
    from vessel_nb.model import ModelError
    m = save_pretrained(tiny, tmp_path / "m"); assert (m / "checksums.json").is_file()
    f = m / "model.safetensors"; b = f.read_bytes()
    if damage.endswith("-old"): (m / "checksums.json").unlink()     # written by an older version
    if damage == "flip": f.write_bytes(b[:-10] + bytes([b[-10] ^ 4]) + b[-9:])
    if damage.startswith("truncate"): f.write_bytes(b[:len(b) // 3])
    if damage == "delete": (m / "tokenizer.json").unlink()
    if damage == "delete-old": f.unlink()
    if damage.startswith("config"): (m / "config.json").write_text('{"format": ')
    with pytest.raises(ValueError, match=expected.replace("(", "\\(")): load(m, device="cpu")
    if damage.endswith("-old"): assert capsys.readouterr().err.count("no checksums.json (written by an older version)") == 1


def test_a_flipped_bit_goes_unnoticed_without_verification(tiny, tmp_path):
    "Why the checksums: a flipped bit in the weights loads fine when not verified, so the test above can fail."
    m = save_pretrained(tiny, tmp_path / "m"); f = m / "model.safetensors"; b = f.read_bytes()
    f.write_bytes(b[:-10] + bytes([b[-10] ^ 4]) + b[-9:])
    load(m, device="cpu", verify=False)


# --- options for thin vessels: mask refiner, soft clDice, flip test-time augmentation (all off by default) ---

def test_thin_vessel_options_are_off_by_default_and_checked():
    from vessel_nb.model import ModelConfig, ModelError
    for p in ("tiny", "scratch-t", "scratch-s", "internvl3-1b"):
        c = get_config(p)
        assert (c.refine, c.loss_cldice, c.flip_tta) == (0, 0.0, False), p
    assert not any("refiner" in n for n, _ in build_sam(get_config("tiny")).named_parameters())
    with pytest.raises(ModelError, match="refine=12: use 0 .* multiple of 8"): ModelConfig(refine=12)
    with pytest.raises(ModelError, match="loss_cldice=-1: must be >= 0"): ModelConfig(loss_cldice=-1)


def test_cldice_loss_scores_centrelines():
    from vessel_nb.model import cldice_loss, soft_skeleton
    t = torch.zeros(2, 32, 32); t[:, 15:17, 2:30] = 1                     # thin vessels
    hit, miss = torch.where(t > 0, 20., -20.), torch.full_like(t, -20.)
    half = hit.clone(); half[:, :, 16:] = -20.
    l = [cldice_loss(x, t).item() for x in (hit, half, miss)]
    assert l[0] < 0.05 < l[1] < l[2] and l[2] > 0.95, l
    thick = torch.zeros(1, 1, 32, 32); thick[..., 12:20, 2:30] = 1
    assert soft_skeleton(thick).sum() < thick.sum() / 3                  # a skeleton is thinner than the mask
    big = torch.nn.functional.interpolate(t[:, None], size=(128, 128))[:, 0]   # targets at another resolution
    assert abs(cldice_loss(hit, big).item() - l[0]) < 0.05


def test_refiner_and_cldice_train_and_the_loss_adds_up():
    m = build_model(get_config("tiny", refine=8, loss_cldice=0.5), device="cpu")
    ref = m.sam.sam_mask_decoder.refiner
    assert all(p.requires_grad and param_group("sam.sam_mask_decoder.refiner." + n) == "sam_decoder" for n, p in ref.named_parameters())
    b = batch_of(m)
    out = m(b)
    c = m.cfg
    assert out["loss_cldice"] > 0
    torch.testing.assert_close(out["loss"], c.loss_bce * out["loss_mask"] + c.loss_dice * out["loss_dice"]
                               + c.loss_llm * out["loss_llm"] + 0.5 * out["loss_cldice"])
    w0 = ref.out.weight.detach().clone()
    losses = overfit(m, b, steps=5)
    assert not torch.equal(ref.out.weight, w0) and losses[-1] < losses[0]   # the gradient reaches the refiner
    h, _ = m.llm_forward(b)
    lg, _ = m.seg_logits(h, b["input_ids"], b["sam_images"])
    assert lg.shape == (3, 64, 64)                                          # half the 128² SAM2 input, not 32²


def test_refined_flip_tta_model_saves_loads_and_rebuilds_strictly(tmp_path):
    from dataclasses import asdict
    from vessel_nb.checkpoint import save_checkpoint, rebuild
    from vessel_nb.testing import trained_tiny
    from vessel_nb.train import TrainConfig
    m = trained_tiny(refine=8, flip_tta=True, loss_cldice=1.0)
    img = np.random.default_rng(3).integers(0, 255, (40, 52), dtype=np.uint8)
    ref = VesselPredictor(m, answer="Sure, [SEG].").predict(img)
    save_pretrained(m, tmp_path / "m")
    mc = json.loads((tmp_path / "m" / "config.json").read_text())["model_config"]
    assert (mc["refine"], mc["flip_tta"], mc["loss_cldice"]) == (8, True, 1.0)   # the export describes itself
    got = VesselPredictor(load(tmp_path / "m", device="cpu"), answer="Sure, [SEG].").predict(img)
    np.testing.assert_allclose(got.prob, ref.prob, atol=1e-4)
    save_checkpoint(tmp_path / "work", 1, m.trainable_state_dict(), dict(config=asdict(TrainConfig(preset="tiny")),
                    model_config=asdict(m.cfg), identity=m.identity(), iter=1))
    back = rebuild(tmp_path / "work" / "iter_1", device="cpu")
    assert (back.cfg.refine, back.cfg.flip_tta) == (8, True)
    np.testing.assert_allclose(VesselPredictor(back, answer="Sure, [SEG].").predict(img).prob, ref.prob, atol=1e-4)
    conf = json.loads((tmp_path / "m" / "config.json").read_text()); conf["model_config"]["refine"] = 0
    (tmp_path / "m" / "config.json").write_text(json.dumps(conf))             # a config that hides the refiner
    with pytest.raises(KeyMismatch, match="unexpected: sam.sam_mask_decoder.refiner"): load(tmp_path / "m", device="cpu", verify=False)


def test_flip_tta_averages_the_four_flips():
    from vessel_nb.model import sam_masks
    sam = build_sam(get_config("tiny", refine=8)); sam.sam_mask_decoder.refiner.out.weight.data.normal_()
    ims, pr, idx = torch.randn(2, 3, 128, 128), torch.randn(3, 256), torch.tensor([0, 1, 1])
    with torch.no_grad():
        one = sam_masks(sam, ims, idx, pr)
        four = sam_masks(sam, ims, idx, pr, flips=True)
        by_hand = torch.stack([sam_masks(sam, ims.flip(d), idx, pr).flip(d) if d else one for d in [(), (-1,), (-2,), (-2, -1)]]).mean(0)
        mirrored = sam_masks(sam, ims.flip(-2), idx, pr, flips=True).flip(-2)
    assert one.shape == four.shape == (3, 64, 64) and not torch.allclose(one, four, atol=1e-3)
    torch.testing.assert_close(four, by_hand); torch.testing.assert_close(four, mirrored, atol=1e-4, rtol=1e-4)
