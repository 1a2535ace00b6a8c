"convert guards with hostile inputs: training set carried by exports, outputs never inputs, damaged files named, flags validated."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from vessel_nb import convert as C, official as O
from vessel_nb.core import sha256_file
from vessel_nb.dataset import training_set, load_split
from vessel_nb.core import write_checksums, OUTPUT_MARKER
from vessel_nb.model import build_model, get_config, SA2VA_TRAIN
from vessel_nb.testing import official_from_model, official_cfg_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT/'data'/'sample'
torch.set_num_threads(1)

def main(capsys, *args) -> tuple[int, str]:
    "Run the CLI in this process: (exit status, stderr)."
    with pytest.raises(SystemExit) as e: C.main([str(a) for a in args]); raise SystemExit(0)
    return e.value.code, capsys.readouterr().err

def inspect_out(capsys, path) -> str:
    "stdout of `inspect PATH` (which must succeed)."
    with pytest.raises(SystemExit) as e: C.main(['inspect', str(path)]); raise SystemExit(0)
    r = capsys.readouterr(); assert e.value.code == 0, r.err
    return r.out

def one_error(err:str, *parts):
    "stderr is one `error:` line (warnings aside) with no traceback, containing every part."
    lines = [l for l in err.splitlines() if not l.startswith('warning:')]
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'Traceback' not in err, err
    for p in parts: assert p in lines[0], (p, lines[0])

@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "An imported tiny checkpoint (our format, with checksums.json): work/iter_500/."
    d = tmp_path_factory.mktemp('conv')
    m = build_model(get_config('tiny', train=SA2VA_TRAIN, lora_r=4, lora_alpha=8), device='cpu')
    O.write_official(official_from_model(m), d/'iter_500.pth', {'epoch': 0, 'iter': 500, 'cfg': official_cfg_text(m)})
    O.import_sa2va(d/'iter_500.pth', d/'work', 'tiny', device='cpu')
    return d

def copy(work, tmp_path) -> Path:
    shutil.copytree(work/'work', tmp_path/'w'); return tmp_path/'w'/'iter_500'

# ---------------------------------------------------------------- 1. exports carry the training set

def test_export_carries_the_training_set(work, tmp_path, capsys):
    ck = copy(work, tmp_path)
    names = load_split(DATA, 'train')[:3]
    (ck/'training_set.json').write_text(json.dumps(training_set(DATA, names))); write_checksums(ck)
    code, err = main(capsys, 'export', ck, tmp_path/'e', '--dtype', 'float32'); assert code == 0, err
    e = json.loads((tmp_path/'e'/'export.json').read_text())
    assert e['training_set'] == {'recorded': True, 'n': 3}
    assert (tmp_path/'e'/'training_set.json').read_bytes() == (ck/'training_set.json').read_bytes()
    assert '| training set | 3 images, recorded in `training_set.json`' in (tmp_path/'e'/'README.md').read_text()
    assert 'training_set.json' in json.loads((tmp_path/'e'/'checksums.json').read_text())
    out = inspect_out(capsys, ck)
    assert 'training    set 3 images, recorded' in out and 'checksums   verified' in out, out

def test_export_without_a_training_set_says_so(work, tmp_path, capsys):
    code, err = main(capsys, 'export', work/'work', tmp_path/'e'); assert code == 0, err
    assert json.loads((tmp_path/'e'/'export.json').read_text())['training_set'] == {'recorded': False, 'n': None}
    assert '| training set | not recorded |' in (tmp_path/'e'/'README.md').read_text()
    assert not (tmp_path/'e'/'training_set.json').exists()

def test_a_damaged_training_record_is_named(work, tmp_path, capsys):
    ck = copy(work, tmp_path); (ck/'training_set.json').write_text('{"version": 1'); write_checksums(ck)
    code, err = main(capsys, 'export', ck, tmp_path/'e'); assert code == 1
    one_error(err, 'training_set.json: unreadable'); assert not (tmp_path/'e').exists()

# ---------------------------------------------------------------- 4. an output is never an input

@pytest.mark.parametrize('where,how', [('work', 'is the input'), ('ckpt', 'lies inside the input'), ('inside', 'lies inside the input'),
                                       ('around', 'contains the input')])
def test_export_never_writes_over_its_inputs(work, tmp_path, capsys, where, how):
    ck = copy(work, tmp_path); w = ck.parent
    out = {'work': w, 'ckpt': ck, 'inside': ck/'export', 'around': tmp_path}[where]
    code, err = main(capsys, 'export', w, out, '--overwrite'); assert code == 1
    one_error(err, f'the output folder {how}'); assert (ck/'trainable.safetensors').is_file() and (ck/'meta.json').is_file()

def test_overwrite_replaces_only_a_folder_this_tool_wrote(work, tmp_path, capsys):
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'thesis.tex').write_text('x')
    code, err = main(capsys, 'export', work/'work', tmp_path/'mine', '--overwrite'); assert code == 1
    one_error(err, 'was not written by vessel_nb'); assert (tmp_path/'mine'/'thesis.tex').is_file()
    assert main(capsys, 'export', work/'work', tmp_path/'e')[0] == 0 and (tmp_path/'e'/OUTPUT_MARKER).is_file()
    code, err = main(capsys, 'export', work/'work', tmp_path/'e', '--overwrite', '--dtype', 'float32'); assert code == 0, err
    assert json.loads((tmp_path/'e'/'export.json').read_text())['dtype'] == 'float32'

def test_imports_never_write_over_their_inputs(work, tmp_path, capsys):
    pth = tmp_path/'run'/'iter_500.pth'; pth.parent.mkdir(); shutil.copy(work/'iter_500.pth', pth)
    for out, how in [(pth, 'is the input'), (pth.parent, 'contains the input')]:
        code, err = main(capsys, 'import-sa2va', pth, out, '--base', 'tiny', '--overwrite'); assert code == 1
        one_error(err, f'the output folder {how}'); assert pth.is_file()
    src = tmp_path/'InternVL3-1B'; src.mkdir(); (src/'config.json').write_text('{}')
    for out, how in [(src, 'is the input'), (src/'hf', 'lies inside the input')]:
        code, err = main(capsys, 'import-internvl', src, out, '--overwrite'); assert code == 1
        one_error(err, f'the output folder {how}'); assert (src/'config.json').is_file()

# ---------------------------------------------------------------- 6. integrity: damaged files named, no traceback

def _truncate(p): b = p.read_bytes(); p.write_bytes(b[:len(b) // 2])
def _flip(p): b = p.read_bytes(); p.write_bytes(b[:-5] + bytes([b[-5] ^ 1]) + b[-4:])

@pytest.mark.parametrize('cmd', ['inspect', 'export'])
@pytest.mark.parametrize('damage,expected', [
    ('truncate', 'trainable.safetensors changed or truncated'), ('flip', 'trainable.safetensors changed or truncated'),
    ('meta', 'meta.json changed or truncated'), ('optimizer', 'optimizer.pt missing'),
    ('truncate-old', 'trainable.safetensors: unreadable'), ('meta-old', 'meta.json: unreadable')])
def test_damaged_checkpoint_is_named(work, tmp_path, capsys, cmd, damage, expected):
    ck = copy(work, tmp_path)
    if damage == 'optimizer': (ck/'optimizer.pt').write_bytes(b'x' * 10); write_checksums(ck); (ck/'optimizer.pt').unlink()
    if damage.endswith('-old'): (ck/'checksums.json').unlink()
    if damage.startswith('truncate'): _truncate(ck/'trainable.safetensors')
    if damage == 'flip': _flip(ck/'trainable.safetensors')
    if damage.startswith('meta'): (ck/'meta.json').write_text('{"iter": 5,')
    code, err = main(capsys, cmd, ck, *([tmp_path/'e'] if cmd == 'export' else [])); assert code == 1
    one_error(err, expected)
    if damage.endswith('-old'): assert 'warning: ' in err and 'no checksums.json' in err
    assert not (tmp_path/'e').exists()

@pytest.fixture(scope='module')
def exported(work, tmp_path_factory):
    out = tmp_path_factory.mktemp('exp')/'e'; C.export(work/'work', out); return out

@pytest.mark.parametrize('damage,expected', [('flip', 'model.safetensors changed or truncated'),
    ('export', 'export.json changed or truncated'), ('delete', 'tokenizer.json missing'),
    ('export-old', 'export.json: unreadable'), ('truncate-old', 'model.safetensors: unreadable')])
def test_damaged_export_is_named(exported, tmp_path, capsys, damage, expected):
    e = tmp_path/'e'; shutil.copytree(exported, e)
    if damage.endswith('-old'): (e/'checksums.json').unlink()
    if damage == 'flip': _flip(e/'model.safetensors')
    if damage.startswith('export'): (e/'export.json').write_text('{"name": ')
    if damage == 'delete': (e/'tokenizer.json').unlink()
    if damage == 'truncate-old': _truncate(e/'model.safetensors')
    if damage != 'truncate-old':
        code, err = main(capsys, 'inspect', e); assert code == 1; one_error(err, expected)
    from vessel_nb.model import load
    if damage != 'export-old':   # load reads no export.json
        with pytest.raises(ValueError, match=expected): load(e, device='cpu')

def test_intact_export_inspects_as_verified(exported, capsys):
    e = json.loads(inspect_out(capsys, exported))
    assert e['checksums'] == 'verified' and e['format'] == 'vessel_nb export' and e['training_set'] == {'recorded': False, 'n': None}

def test_truncated_official_checkpoint_is_named(work, tmp_path, capsys):
    p = tmp_path/'iter_500.pth'; shutil.copy(work/'iter_500.pth', p); _truncate(p)
    for args in (('inspect', p), ('import-sa2va', p, tmp_path/'w', '--base', 'tiny')):
        code, err = main(capsys, *args); assert code == 1; one_error(err, 'iter_500.pth: unreadable', 'copy it again')

def test_import_takes_only_official_checkpoints(work, tmp_path, capsys):
    "import-sa2va recognises its input with checkpoint.resolve: ours, an export, a stray file or nothing are refused by name."
    (tmp_path/'notes.txt').write_text('x')
    for src, what in [(work/'work', 'a vessel_nb training checkpoint (iter_500)'), (work/'work'/'iter_500', 'already in our format'),
                      (tmp_path/'notes.txt', 'not a checkpoint'), (tmp_path/'nothing.pth', 'no such file or folder')]:
        code, err = main(capsys, 'import-sa2va', src, tmp_path/'w', '--base', 'tiny'); assert code == 1
        one_error(err, str(src), what, 'import-sa2va takes an official Sa2VA/xtuner `iter_N.pth` file or DeepSpeed `iter_N.pth/` folder')
        assert not (tmp_path/'w').exists()

# ---------------------------------------------------------------- 8. flags

@pytest.mark.parametrize('flags,code,expected', [
    (['--tolerance', 'nan'], 1, '--tolerance nan: give a number in [0, 1)'), (['--tolerance', '-1'], 1, '--tolerance -1.0'),
    (['--tolerance', '1'], 1, '--tolerance 1.0: give a number in [0, 1)'), (['--tolerance', 'inf'], 1, '--tolerance inf'),
    (['--device', 'tpu'], 1, '--device tpu: not a device'), (['--device', 'cuda:9'], 1, '--device cuda:9: this machine has'),
    (['--dtype', 'int8'], 2, "argument --dtype: invalid choice: 'int8'"), (['--tolerance', 'x'], 2, "invalid float value: 'x'")])
def test_export_flags_are_validated(work, tmp_path, capsys, flags, code, expected):
    got, err = main(capsys, 'export', work/'work', tmp_path/'e', *flags)
    assert got == code and expected in err and 'Traceback' not in err, err
    assert not (tmp_path/'e').exists()

def test_import_device_is_validated(work, tmp_path, capsys):
    code, err = main(capsys, 'import-sa2va', work/'iter_500.pth', tmp_path/'w', '--base', 'tiny', '--device', 'npu')
    assert code == 1; one_error(err, '--device npu')

def test_real_cli_prints_one_line(work, tmp_path):
    ck = copy(work, tmp_path); _truncate(ck/'trainable.safetensors')
    r = subprocess.run([sys.executable, '-m', 'vessel_nb.convert', 'export', ck, tmp_path/'e'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and 'Traceback' not in r.stderr and 'trainable.safetensors changed or truncated' in r.stderr, r.stderr
