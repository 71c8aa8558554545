"""The engine stands on NumPy and Numba alone."""
import subprocess
import sys
import textwrap


def test_import_npcnn_with_torch_blocked():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "matplotlib"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        import npcnn, npcnn.functional, npcnn.data
        model = npcnn.build("lenet5", seed=0)
        assert model(np.zeros((1, 1, 28, 28), dtype=np.float32)).shape == (1, 10)
        assert not any(m.split(".")[0] in ("torch", "matplotlib") for m in sys.modules)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_deconvnet_reaches_the_kernels_through_functional_only():
    """deconv.py and sparse_signal.py use buffer reuse and zero-skipping by
    npcnn.functional's arguments (reuse=, conv_path), not the kernels'
    internals: from npcnn.ops they import the tuning thresholds alone."""
    import ast
    from pathlib import Path
    import npcnn
    for module in ("deconv.py", "sparse_signal.py"):
        tree = ast.parse((Path(npcnn.__file__).parent / module).read_text())
        reached = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ops"):
                reached |= {f"{node.module}.{alias.name}" for alias in node.names}
        assert reached <= {"ops.runtime.tuning"}, (module, reached)


def test_the_engine_installs_numpy_and_numba_alone():
    """pyproject.toml: ``pip install npcnn`` brings NumPy, Numba and SciPy
    (numba's np.dot calls BLAS through it); torch, the figures and the test
    tools come with extras, each holding what it builds on, and the
    README's commands install the extra they need."""
    import re
    import tomllib
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}

    extras = {key: names(value) for key, value in project["optional-dependencies"].items()}
    assert names(project["dependencies"]) == {"numpy", "numba", "scipy"}
    assert {"torch", "pillow", "mlxtend"} <= extras["torch"] <= extras["vis"] <= extras["dev"] == extras["all"]
    assert {"matplotlib", "tqdm"} <= extras["vis"] and {"pytest", "selenium", "scikit-image"} <= extras["dev"]
    readme = (root / "README.md").read_text()
    assert '-e ".[vis]" && .venv/bin/npcnn demo' in readme
    test_command = readme.split("# the tests\n", 1)[1].split("\n", 1)[0]
    assert '-e ".[dev]"' in test_command and test_command.endswith(".venv/bin/python -m pytest -q")
