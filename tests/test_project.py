"Project foundation: layout, README generated from index.ipynb, docs config, nbdev cleaning keeps papermill tags."
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_NBS = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))   # 00_core … 10_testing, 01a_synth, …

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
    cells = json.loads(path.read_text())['cells']
    assert f'#| default_exp {name.split("_", 1)[1]}' in ''.join(cells[0]['source'])
    md = ''.join(cells[1]['source'])
    assert md.startswith('# ') and '\n> ' in md, f'{name}: cell 1 must be "# Title" + "> subtitle"'

def test_every_module_notebook_is_in_the_sidebar():
    "The docs site lists every module page, in the order of the files."
    q = (ROOT/'_quarto.yml').read_text()
    listed = [l.strip()[2:-len('.ipynb')] for l in q.splitlines() if l.strip().startswith('- ') and l.strip()[2:3].isdigit()]
    assert len(MODULE_NBS) >= 14 and listed == MODULE_NBS, f'sidebar lists {listed}'

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


def _examples(name):
    "The example cells of a module notebook: code that is neither exported nor hidden nor skipped."
    cells = json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())['cells']
    skip = ('#| export', '#| hide', '#| eval: false', '#| exports')
    return [c for c in cells if c['cell_type'] == 'code' and not any(t in ''.join(c['source']) for t in skip)]

@pytest.mark.parametrize('name', MODULE_NBS)
def test_module_notebook_examples_show_their_output(name):
    "The docs site shows notebooks as saved: every example cell of a module page has its output committed."
    blank = [''.join(c['source']).splitlines()[0][:60] for c in _examples(name) if not c.get('outputs')]
    assert _examples(name) and not blank, f'{name}: {len(blank)} example cell(s) without a committed output, e.g. {blank[:3]}'

DOCS = sorted([*ROOT.glob('nbs/**/*.ipynb'), *ROOT.glob('nbs/**/*.md'), ROOT/'README.md'])

@pytest.mark.parametrize('doc', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_speak_to_users(doc):
    "No page cites a file a reader of the site cannot open, names an issue number, or narrates one person's run."
    import re
    text = doc.read_text(encoding='utf-8')
    for bad in [r'sa2va\.md', r'shared/reference', r'\bissue \d+', r"the user's (run|fork|12,192)", r"\bthis session's device\b", r'\bthe device tool\b']:
        assert not re.search(bad, text, re.I), f'{doc.name}: {bad!r} found: ' + re.search(bad, text, re.I).group(0)
