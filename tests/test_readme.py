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


def test_where_the_math_lives_points_at_real_functions_and_tests():
    """Every `file:function` of the README's table is a function defined in
    that file, and every `tests/file::test` a test that exists."""
    import ast
    root = README.parent
    section = README.read_text().split("## Where the math lives", 1)[1].split("\n## ", 1)[0]
    functions = re.findall(r"`(npcnn/[\w/]+\.py):(\w+)`", section)
    tests = re.findall(r"`(tests/\w+\.py)::(\w+)`", section)
    assert len(functions) >= 20 and len(tests) >= 10
    for path, name in functions + tests:
        defined = {node.name for node in ast.parse((root / path).read_text()).body
                   if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"README: {path} defines no {name}"


def test_readme_links_reach_files_of_the_repository():
    """Every relative link and image of the README names a file that exists."""
    for target in re.findall(r"\]\(([^)#:]+)\)", README.read_text()):
        assert (README.parent / target).exists(), f"README links to {target}, which does not exist"
