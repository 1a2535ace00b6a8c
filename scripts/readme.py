"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which is not installable here).

`python scripts/readme.py` writes it; `python scripts/readme.py --check` exits 1 when README.md is stale."""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def render(nb_path=root/'nbs'/'index.ipynb'):
    "Markdown of the notebook: markdown cells as they are, code cells fenced; links made relative to the repo root."
    out = ['<!-- generated from nbs/index.ipynb by scripts/readme.py: edit the notebook, not this file -->']
    for c in json.loads(nb_path.read_text())['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide'): continue
        out.append(src if c['cell_type'] == 'markdown' else f'```python\n{src}\n```')
    text = '\n\n'.join(out) + '\n'
    return re.sub(r'\]\((?!https?:|#|/)([^)]+)\)', r'](nbs/\1)', text)

if __name__ == '__main__':
    text, dest = render(), root/'README.md'
    if '--check' in sys.argv:
        if not dest.exists() or dest.read_text() != text: sys.exit('README.md is stale: run `python scripts/readme.py`')
    else: dest.write_text(text)
