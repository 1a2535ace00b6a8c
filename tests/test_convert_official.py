"convert: official Sa2VA/xtuner checkpoint layouts (single file, DeepSpeed ZeRO-2/3 folders) and the InternVL release layout."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from vessel_nb import convert as C, official as O
from vessel_nb.core import sha256_file

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}

def cli(*args):
    return subprocess.run([sys.executable, '-m', 'vessel_nb.convert', *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=ROOT)

CFG = """path = '/models/InternVL3-tiny'
max_epochs = 2
model = dict(type='Sa2VAModel', special_tokens=['[SEG]', '<p>', '</p>', '<vp>', '</vp>'], pretrained_pth=None,
    mllm=dict(type='InternVLMLLM', model_path=path, freeze_llm=True, freeze_visual_encoder=True,
              llm_lora=dict(type='LoraConfig', r=4, lora_alpha=8, lora_dropout=0.05, bias='none',
                            task_type='CAUSAL_LM', modules_to_save=['embed_tokens', 'lm_head'])))
train_cfg = dict(type='TrainLoop', max_epochs=max_epochs)
"""

def logical(H=64, layers=2, r=4, vocab=40, seed=0):
    g = torch.Generator().manual_seed(seed); t = lambda *s: torch.randn(*s, generator=g)
    sd = {}
    for i in range(layers):
        for m, o in {'self_attn.q_proj': H, 'self_attn.v_proj': H // 2, 'mlp.up_proj': 2 * H}.items():
            sd[f'lm.layers.{i}.{m}.lora_A'], sd[f'lm.layers.{i}.{m}.lora_B'] = t(r, H), t(o, r)
    sd.update({'lm.embed_tokens': t(vocab, H), 'lm.lm_head': t(vocab, H), 'projector.layer_norm.weight': t(128),
               'projector.linear_1.weight': t(H, 128), 'projector.linear_2.weight': t(H, H),
               'mask_decoder.iou_token.weight': t(1, 256), 'seg_head.0.weight': t(H, H), 'seg_head.2.weight': t(256, H)})
    return sd

META = {'epoch': 1, 'iter': 300, 'cfg': CFG, 'seed': 42, 'time': '20251123_101500', 'mmengine_version': '0.10.7'}
SCHED = [{'by_epoch': False, 'begin': 0, 'end': 30}, {'by_epoch': False, 'begin': 30, 'end': 600}]

@pytest.fixture(scope='module')
def official(tmp_path_factory):
    d = tmp_path_factory.mktemp('official'); sd = logical()
    paths = {'file': d/'iter_300.pth', 'zero2': d/'z2'/'iter_300.pth', 'zero3': d/'z3'/'iter_300.pth'}
    O.write_official(sd, paths['file'], META, schedulers=SCHED)
    O.write_official(sd, paths['zero2'], META, deepspeed=2, world=2, schedulers=SCHED)
    O.write_official(sd, paths['zero3'], META, deepspeed=3, world=4, schedulers=SCHED)
    return sd, paths

def test_single_file_has_the_official_layout(official):
    sd, p = official
    ck = torch.load(p['file'], weights_only=True)
    assert set(ck) >= {'meta', 'state_dict'} and 'optimizer' not in ck
    keys = set(ck['state_dict'])
    assert 'mllm.model.language_model.base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight' in keys
    assert 'mllm.model.language_model.base_model.model.model.embed_tokens.modules_to_save.default.weight' in keys
    assert 'mllm.model.language_model.base_model.model.lm_head.modules_to_save.default.weight' in keys
    assert {'mllm.model.mlp1.0.weight', 'mllm.model.mlp1.1.weight', 'mllm.model.mlp1.3.weight'} <= keys
    assert 'grounding_encoder.sam2_model.sam_mask_decoder.iou_token.weight' in keys and 'text_hidden_fcs.2.weight' in keys

@pytest.mark.parametrize('form', ['file', 'zero2', 'zero3'])
def test_every_layout_reads_back_the_same_weights(official, form):
    sd, p = official
    ck = O.read_official(p[form])
    back = {O.logical_name(k)[0]: v for k, v in ck.state_dict.items()}
    assert sorted(back) == sorted(sd)
    for k in sd: assert torch.equal(back[k].float(), sd[k]), k

@pytest.mark.parametrize('form', ['file', 'zero2', 'zero3'])
def test_inspect_json(official, form):
    sd, p = official
    r = cli('inspect', p[form], '--json'); assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d['iteration'], d['max_iters'], d['progress'], d['epoch'], d['max_epochs']) == (300, 600, 50.0, 1, 2)
    assert d['tensors'] == len(sd) and d['params'] == sum(v.numel() for v in sd.values())
    assert d['parts']['lora'] == {'tensors': 12, 'params': sum(v.numel() for k, v in sd.items() if '.lora_' in k)}
    assert d['lora'] == {'r': 4, 'alpha': 8, 'dropout': 0.05, 'targets': O.ALL_LINEAR, 'modules_to_save': ['embed_tokens', 'lm_head']}
    assert d['base']['name'] == '/models/InternVL3-tiny' and d['base']['hidden_size'] == [64]
    assert d['date'] == '2025-11-23T10:15:00' and d['unknown_keys'] == []
    assert 'SAM2 image encoder' in d['frozen'] and 'SAM2 mask decoder' in d['trainable']
    assert d['format'] == ('xtuner single file' if form == 'file' else 'xtuner DeepSpeed folder')

def test_inspect_human(official):
    r = cli('inspect', official[1]['file']); assert r.returncode == 0, r.stderr
    assert 'iteration   300 / 600 (50.0%), epoch 1 / 2' in r.stdout
    assert 'LoRA        r 4, alpha 8, dropout 0.05' in r.stdout

def test_inspect_flags_a_26b_head_and_foreign_keys(tmp_path):
    sd = logical(H=48)
    cfg = CFG.replace('/models/InternVL3-tiny', 'OpenGVLab/InternVL2_5-26B')
    O.write_official(sd, tmp_path/'iter_1.pth', {**META, 'cfg': cfg})
    d = O.inspect_official(tmp_path/'iter_1.pth')
    assert any('InternVL2_5-26B has hidden size 6144 but the tensors say [48]' in n for n in d['notes'])
    ck = torch.load(tmp_path/'iter_1.pth', weights_only=True)
    ck['state_dict']['mllm.model.vision_model.encoder.layers.0.attn.qkv.lora_A.default.weight'] = torch.zeros(1)
    torch.save(ck, tmp_path/'iter_2.pth')
    assert O.inspect_official(tmp_path/'iter_2.pth')['unknown_keys'] == ['mllm.model.vision_model.encoder.layers.0.attn.qkv.lora_A.default.weight']

def test_zero3_without_shards_is_refused(official, tmp_path):
    import shutil
    d = tmp_path/'iter_300.pth'; shutil.copytree(official[1]['zero3'], d)
    for f in d.glob('*optim_states.pt'): f.unlink()
    r = cli('inspect', d); assert r.returncode == 1
    assert 'ZeRO-3 placeholders' in r.stderr and 'optim_states.pt' in r.stderr

def test_missing_checkpoint_is_one_clear_line(tmp_path):
    r = cli('inspect', tmp_path/'nope.pth')
    from vessel_nb.checkpoint import ACCEPTED
    assert r.returncode == 1 and r.stderr.strip() == f'error: {tmp_path/"nope.pth"}: no such file or folder; give {ACCEPTED}'

def test_import_internvl_cli_round_trip(tmp_path):
    from transformers import InternVLForConditionalGeneration, InternVLConfig, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {t: i for i, t in enumerate(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<img>', '</img>', '<IMG_CONTEXT>', 'a', 'b'])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token='<|endoftext|>')); tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token='<|im_end|>')
    tok.add_special_tokens({'additional_special_tokens': ['<img>', '</img>', '<IMG_CONTEXT>']})
    cfg = InternVLConfig(vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                            image_size=[32, 32], patch_size=[8, 8], attention_bias=True, use_qk_norm=True),
                         text_config=dict(model_type='qwen2', hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          num_key_value_heads=1, intermediate_size=64, vocab_size=len(tok)),
                         image_token_id=5, image_seq_length=4)
    m = InternVLForConditionalGeneration(cfg).eval()
    O.write_internvl_original(m, tok, tmp_path/'orig')
    assert 'vision_model.encoder.layers.0.attn.q_norm.weight' in O.header_shapes([tmp_path/'orig'/'model.safetensors'])
    r = cli('import-internvl', tmp_path/'orig', tmp_path/'hf'); assert r.returncode == 0, r.stderr
    back = InternVLForConditionalGeneration.from_pretrained(tmp_path/'hf').eval()
    ids, px = torch.tensor([[1, 3, 5, 5, 5, 5, 4, 6]]), torch.randn(1, 3, 32, 32)
    with torch.no_grad(): assert torch.equal(back(input_ids=ids, pixel_values=px).logits, m(input_ids=ids, pixel_values=px).logits)
    r = cli('import-internvl', tmp_path/'orig', tmp_path/'hf')
    assert r.returncode == 1 and 'exists; pass --overwrite' in r.stderr
    cfgj = json.loads((tmp_path/'orig'/'config.json').read_text()); cfgj['llm_config']['architectures'] = ['InternLM2ForCausalLM']
    (tmp_path/'orig'/'config.json').write_text(json.dumps(cfgj))
    r = cli('import-internvl', tmp_path/'orig', tmp_path/'hf2')
    assert r.returncode == 1 and 'InternLM2ForCausalLM' in r.stderr and not (tmp_path/'hf2').exists()
