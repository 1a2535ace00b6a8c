"convert end to end: our training checkpoints (inspect, export + self-test) and official Sa2VA checkpoints (import-sa2va)."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from vessel_nb import convert as C, official as O
from vessel_nb.core import sha256_file
from vessel_nb.model import get_config, load
from vessel_nb.testing import trained_tiny, official_from_model, official_cfg_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT/'data'/'sample'
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false'}

def cli(*args):
    return subprocess.run([sys.executable, '-m', 'vessel_nb.convert', *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=ROOT)

def same_sd(a, b):
    assert sorted(a) == sorted(b)
    for k in a: assert torch.equal(a[k].cpu(), b[k].cpu()), k

def meta(m, it=500):
    return {'epoch': 0, 'iter': it, 'cfg': official_cfg_text(m), 'seed': 42, 'time': '20251122_090812'}

# ---------------------------------------------------------------- official checkpoints -> ours

@pytest.fixture(scope='module')
def official(tmp_path_factory):
    d = tmp_path_factory.mktemp('off'); m = trained_tiny()
    logical = official_from_model(m)
    O.write_official(logical, d/'iter_500.pth', meta(m))
    O.write_official(logical, d/'ds'/'iter_500.pth', meta(m), deepspeed=2, world=2)
    return m, logical, d

def test_official_fixture_has_the_real_key_names(official):
    m, logical, d = official
    keys = set(torch.load(d/'iter_500.pth', weights_only=True)['state_dict'])
    assert 'mllm.model.language_model.base_model.model.model.layers.0.self_attn.o_proj.lora_A.default.weight' in keys
    assert 'mllm.model.language_model.base_model.model.lm_head.modules_to_save.default.weight' in keys
    assert 'grounding_encoder.sam2_model.sam_mask_decoder.iou_prediction_head.layers.0.weight' in keys
    assert {'text_hidden_fcs.0.weight', 'text_hidden_fcs.2.bias', 'mllm.model.mlp1.0.bias', 'mllm.model.mlp1.3.weight'} <= keys
    assert len([k for k in keys if 'sam_mask_decoder' in k]) == len(m.sam.sam_mask_decoder.state_dict())

@pytest.mark.parametrize('form', ['iter_500.pth', 'ds/iter_500.pth'])
def test_import_round_trip(official, tmp_path, form):
    "official layout (from our model) -> import-sa2va -> exactly the trainable weights of the model it came from."
    m, logical, d = official
    r = cli('import-sa2va', d/form, tmp_path/'w', '--base', 'tiny'); assert r.returncode == 0, r.stderr
    got = load_file(tmp_path/'w'/'iter_500'/'trainable.safetensors')
    want = m.trainable_state_dict()
    same_sd(got, want)
    mt = json.loads((tmp_path/'w'/'iter_500'/'meta.json').read_text())
    assert mt['iter'] == 500 and mt['model_config']['lora_r'] == 4 and mt['model_config']['lora_alpha'] == 8
    assert mt['model_config']['seg_rows'] == 'tokens' and mt['source']['sha256'] and mt['identity']['hidden_size'] == 64
    assert set(mt['source']['dropped_rows']['mllm.model.language_model.base_model.model.model.embed_tokens.modules_to_save.default.weight']) == {'<p>', '</p>', '<vp>', '</vp>'}
    assert (tmp_path/'w'/'latest').read_text().strip() == 'iter_500'

def test_full_rows_when_the_base_rows_were_trained(official, tmp_path):
    "Official full copies whose base rows moved cannot be [SEG]-rows only: the import switches to full copies."
    m, logical, d = official
    lg = dict(logical); lg['lm.embed_tokens'] = lg['lm.embed_tokens'].clone(); lg['lm.embed_tokens'][3] += 1
    O.write_official(lg, tmp_path/'iter_500.pth', meta(m))
    r = O.import_sa2va(tmp_path/'iter_500.pth', tmp_path/'w', 'tiny', device='cpu')
    assert r['seg_rows'] == 'full'
    sd = load_file(tmp_path/'w'/'iter_500'/'trainable.safetensors')
    emb = [v for k, v in sd.items() if k.endswith('embed_tokens.modules_to_save.default.weight')]
    assert len(emb) == 1 and torch.equal(emb[0], lg['lm.embed_tokens'][:-4])

def test_refuses_a_wider_head(tmp_path):
    "The fork's failure: a 26B (6144-wide) head into an 8B model. Here: a 96-wide tiny run onto the 64-wide base."
    text = {**get_config('tiny').text, 'hidden_size': 96}
    wide = trained_tiny(hidden_size=96, text=text)
    O.write_official(official_from_model(wide), tmp_path/'iter_1.pth', meta(wide, 1))
    r = cli('import-sa2va', tmp_path/'iter_1.pth', tmp_path/'w', '--base', 'tiny')
    assert r.returncode == 1 and not (tmp_path/'w').exists()
    assert 'made for hidden size 96' in r.stderr and 'base tiny has hidden size 64' in r.stderr
    assert 'text_hidden_fcs.0.weight (hidden 96)' in r.stderr

def test_refuses_unmapped_and_misshaped_keys(official, tmp_path):
    m, logical, d = official
    ck = torch.load(d/'iter_500.pth', weights_only=True)
    ck['state_dict']['mllm.model.vision_model.encoder.layers.0.attn.qkv.lora_A.default.weight'] = torch.zeros(4, 32)
    torch.save(ck, tmp_path/'a.pth')
    r = cli('import-sa2va', tmp_path/'a.pth', tmp_path/'w', '--base', 'tiny')
    assert r.returncode == 1 and 'no place in our model' in r.stderr and 'vision_model.encoder.layers.0.attn.qkv.lora_A' in r.stderr
    lg = dict(logical); lg['projector.linear_1.weight'] = torch.zeros(64, 100)
    O.write_official(lg, tmp_path/'b.pth', meta(m))
    with pytest.raises(ValueError, match=r'multi_modal_projector.linear_1.weight \[64, 100\] vs model \[64, 128\]'):
        O.import_sa2va(tmp_path/'b.pth', tmp_path/'w', 'tiny', device='cpu')
    lg = dict(logical); lg['mask_decoder.iou_prediction_head.layers.0.bias'] = lg['mask_decoder.iou_prediction_head.layers.0.bias'] + 1
    O.write_official(lg, tmp_path/'c.pth', meta(m))
    with pytest.raises(O.KeyMismatch, match='differ from its .frozen. values: grounding_encoder.sam2_model.sam_mask_decoder.iou_prediction_head.layers.0.bias'):
        O.import_sa2va(tmp_path/'c.pth', tmp_path/'w', 'tiny', device='cpu')
    assert not (tmp_path/'w').exists() and not (tmp_path/'w.tmp').exists() and not list(tmp_path.glob('.w.*'))  # no staging folder left

def test_import_refuses_to_overwrite(official, tmp_path):
    (tmp_path/'w').mkdir(); (tmp_path/'w'/'notes.txt').write_text('mine')   # an empty folder would be fine
    r = cli('import-sa2va', official[2]/'iter_500.pth', tmp_path/'w', '--base', 'tiny')
    assert r.returncode == 1 and 'exists; pass --overwrite' in r.stderr

# ---------------------------------------------------------------- our training checkpoints -> export

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    if not (DATA/'splits.json').is_file(): pytest.skip(f'{DATA} (the embedded sample) is missing')
    from vessel_nb.train import TrainConfig, train
    work = tmp_path_factory.mktemp('train')/'w'
    train(TrainConfig(data=str(DATA), work_dir=str(work), max_iters=4, save_every=2, eval_every=0, keep=2))
    return work

def test_inspect_our_checkpoint(run):
    r = cli('inspect', run, '--json'); assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d['path'].endswith('iter_4') and (d['iteration'], d['max_iters'], d['progress']) == (4, 4, 100.0)
    sd = load_file(run/'iter_4'/'trainable.safetensors')
    assert d['tensors'] == len(sd) and d['params'] == sum(v.numel() for v in sd.values()) and d['unknown_keys'] == []
    assert d['data_fingerprint'] == json.loads((run/'iter_4'/'meta.json').read_text())['data_fingerprint']
    assert d['sha256'] == sha256_file(run/'iter_4'/'trainable.safetensors') and d['base']['preset'] == 'tiny'
    h = cli('inspect', run/'iter_2'); assert h.returncode == 0 and 'iteration   2 / 4 (50.0%)' in h.stdout
    p = cli('inspect', run/'latest'); assert p.returncode == 0 and 'iteration   4 / 4 (100.0%)' in p.stdout, p.stderr  # the pointer file

def test_export_fp32_matches_training_and_is_self_contained(run, tmp_path):
    r = cli('export', run, tmp_path/'m32', '--dtype', 'float32'); assert r.returncode == 0, r.stderr
    e = json.loads((tmp_path/'m32'/'export.json').read_text())
    assert e['selftest']['passed'] and e['selftest']['max_abs_diff'] <= 1e-4 and e['selftest']['images'] == 2
    assert e['source']['sha256'] == sha256_file(run/'iter_4'/'trainable.safetensors') and e['source']['iteration'] == 4
    assert e['metrics'] is None and 'not known (no validation logged' in (tmp_path/'m32'/'README.md').read_text()  # run without validation
    assert abs(e['bytes_per_param'] - 4) < 0.1 and (tmp_path/'m32'/'selftest.png').stat().st_size > 1000
    card = (tmp_path/'m32'/'README.md').read_text()
    assert e['source']['sha256'] in card and 'iteration | 4 / 4' in card and e['source']['data_fingerprint'] in card
    code = (f"import sys; sys.modules['vessel_nb.train'] = None; sys.modules['vessel_nb.convert'] = None  # no training code\n"
            f"import numpy as np\nfrom vessel_nb.model import load, VesselPredictor\n"
            f"p = VesselPredictor(load({str(tmp_path/'m32')!r}, device='cpu')).predict(np.zeros((40, 50), np.uint8))\n"
            f"print(p.prob.shape, p.prob.dtype)")
    s = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert s.returncode == 0 and '(40, 50) float32' in s.stdout, s.stderr

def test_export_bf16_two_checkpoints_differ(run, tmp_path):
    a, b = C.export(run/'iter_2', tmp_path/'a'), C.export(run/'iter_4', tmp_path/'b')
    for e in (a, b): assert e['dtype'] == 'bfloat16' and abs(e['bytes_per_param'] - 2) < 0.05 and e['selftest']['passed']
    assert a['source']['sha256'] != b['source']['sha256'] and a['weights_sha256'] != b['weights_sha256']
    batch = C.selftest_batch(load(tmp_path/'a', device='cpu'), C.selftest_images())
    pa, pb = (C.teacher_forced_probs(load(tmp_path/x, device='cpu'), batch) for x in 'ab')
    assert (pa - pb).abs().max() > 1e-3

def test_export_refusals(run, tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'notes.txt').write_text('mine')
    r = cli('export', run, tmp_path/'x'); assert r.returncode == 1 and 'exists; pass --overwrite' in r.stderr
    ck = tmp_path/'w'/'iter_4'; shutil.copytree(run/'iter_4', ck)
    mt = json.loads((ck/'meta.json').read_text()); mt['identity']['hidden_size'] = 3584
    (ck/'meta.json').write_text(json.dumps(mt))
    r = cli('export', ck, tmp_path/'y'); assert r.returncode == 1 and 'meta.json changed or truncated' in r.stderr, r.stderr  # noticed first
    from vessel_nb.core import write_checksums; write_checksums(ck)   # a consistent checkpoint made for another base
    r = cli('export', ck, tmp_path/'y'); assert r.returncode == 1 and 'hidden_size: 3584 vs model 64' in r.stderr
    mt['identity']['hidden_size'] = 64; (ck/'meta.json').write_text(json.dumps(mt)); write_checksums(ck)
    sd = load_file(ck/'trainable.safetensors'); sd.pop(sorted(sd)[0])
    from safetensors.torch import save_file; save_file(sd, ck/'trainable.safetensors'); write_checksums(ck)
    r = cli('export', ck, tmp_path/'y'); assert r.returncode == 1 and 'refusing to load — 1 missing: ' in r.stderr
    with pytest.raises(C.ExportError, match='self-test failed.*--dtype float32'): C.export(run, tmp_path/'z', tolerance=0.0)
    for p in ('y', 'y.tmp', 'z', 'z.tmp'): assert not (tmp_path/p).exists()
    assert not list(tmp_path.glob('.[yz].*'))  # no staging folder left
