"""The README's API tour runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python block"
    monkeypatch.chdir(tmp_path)  # the tour saves lenet5.npz in the working directory
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "lenet5.pt").exists()
