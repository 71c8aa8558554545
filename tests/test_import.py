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
