"Project foundation: layout, README generated from index.ipynb, docs config, nbdev cleaning keeps papermill tags."
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_NBS = ['00_dataset', '01_model', '02_train', '03_convert', '04_eval']

def test_layout():
    for p in ['nbs', 'vessel_nb', 'settings.ini', 'pyproject.toml', 'data', 'tests', '_quarto.yml', '.ci/run']:
        assert (ROOT/p).exists(), f'{p} missing'

def test_nbs_quarto_is_the_top_level_file():
    q = ROOT/'nbs'/'_quarto.yml'
    assert q.is_symlink() and q.resolve() == (ROOT/'_quarto.yml').resolve()

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

@pytest.mark.parametrize('name', MODULE_NBS)
def test_module_notebook_opening(name):
    "Each module notebook: hidden default_exp cell, then a title and a one-line subtitle."
    path = ROOT/'nbs'/f'{name}.ipynb'
    if not path.exists(): pytest.skip(f'{path.name} not written yet')
    cells = json.loads(path.read_text())['cells']
    assert f'#| default_exp {name[3:]}' in ''.join(cells[0]['source'])
    md = ''.join(cells[1]['source'])
    assert md.startswith('# ') and '\n> ' in md, f'{name}: cell 1 must be "# Title" + "> subtitle"'

def test_clean_keeps_papermill_parameters_tag(tmp_path):
    "nbdev-clean must keep the `parameters` tag papermill needs (allowed_cell_metadata_keys)."
    nb = {'cells': [{'cell_type': 'code', 'execution_count': 3, 'id': 'abc', 'metadata': {'tags': ['parameters'], 'foo': 1},
                     'outputs': [], 'source': ['work_dir = "runs/x"']}],
          'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
          'nbformat': 4, 'nbformat_minor': 5}
    p = tmp_path/'nbs'/'p.ipynb'; p.parent.mkdir(); p.write_text(json.dumps(nb))
    (tmp_path/'pyproject.toml').write_text((ROOT/'pyproject.toml').read_text())
    subprocess.run(['nbdev-clean', '--fname', str(p)], cwd=tmp_path, check=True)
    meta = json.loads(p.read_text())['cells'][0]['metadata']
    assert meta.get('tags') == ['parameters'] and 'foo' not in meta
