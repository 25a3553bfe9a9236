"""The zoo stands on its own: `complexity/` imports nothing of `profiler/`, `complexity.core` imports nothing of
the layers above it (`complexity.models`, `complexity.training`), and the torch-free modules stay torch-free.

The import checks run in a fresh interpreter, since this test process may already hold `profiler` or torch."""

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import complexity

PACKAGE = Path(complexity.__file__).parent
ROOT = PACKAGE.parent
MIN_MODULES = 20  # complexity/ holds 22 .py files; far fewer means the search looked in the wrong place
TORCH_FREE = ("complexity.config", "complexity.inputs", "complexity.models.matmul_flops")


def _run_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a new interpreter that imports `complexity` from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_imports_with_the_profiler_blocked():
    result = _run_python("""
        import importlib, importlib.abc, json, pkgutil, sys

        class BlockProfiler(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "profiler" or name.startswith("profiler."):
                    raise ImportError(f"complexity must not import {name}")
                return None

        def fail(name):
            raise  # walk_packages calls this inside its `except`; re-raise instead of skipping the package

        sys.meta_path.insert(0, BlockProfiler())
        assert not any(m == "profiler" or m.startswith("profiler.") for m in sys.modules), "loaded before the block"
        import complexity
        names = [m.name for m in pkgutil.walk_packages(complexity.__path__, "complexity.", onerror=fail)]
        for name in names:
            importlib.import_module(name)
        print(json.dumps({"file": complexity.__file__, "modules": names}))
    """)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["file"]).parent == PACKAGE, "the subprocess imported another copy of complexity"
    assert len(found["modules"]) >= MIN_MODULES, found["modules"]
    assert set(found["modules"]) == set(SOURCES) - {"complexity"}


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module `path` names in an import statement (relative ones resolved), an `importlib.import_module`
    or `__import__` call with a literal name, and for `from X import y` also X.y (y may be a submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                names.add(node.args[0].value)
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_no_module_names_the_profiler_and_core_stays_below_models_and_training():
    assert len(SOURCES) >= MIN_MODULES, sorted(SOURCES)
    profiler_imports, upward_imports = [], []
    for module, path in SOURCES.items():
        for name in sorted(_imported_names(path, module)):
            if _within(name, "profiler"):
                profiler_imports.append(f"{module} imports {name}")
            if _within(module, "complexity.core") and (_within(name, "complexity.models")
                                                        or _within(name, "complexity.training")):
                upward_imports.append(f"{module} imports {name}")
    assert profiler_imports == []
    assert upward_imports == []


def test_torch_free_modules_do_not_import_torch():
    result = _run_python(f"""
        import importlib, json, sys
        for name in {TORCH_FREE!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
    """)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
