"""The simulator stands alone: it imports nothing of the profiler, and needs numpy but not torch.

Each check runs in a fresh interpreter, since this test process has long since imported both.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The package and its six modules: architecture, bench, config, core, formulas, plot.
MIN_MODULES = 7

WITHOUT_PROFILER = r'''
import importlib
import json
import pkgutil
import sys


class RefuseProfiler:
    """A meta-path finder: importing `profiler` or any `profiler.*` module raises ImportError."""

    def find_spec(self, name, path=None, target=None):
        if name == "profiler" or name.startswith("profiler."):
            raise ImportError(f"the simulator must not import {name}")
        return None


def reraise(name):
    raise  # walk_packages calls this inside its `except ImportError`; by default it would skip the package


sys.meta_path.insert(0, RefuseProfiler())
try:
    import profiler
except ImportError:
    pass
else:
    raise SystemExit("RefuseProfiler did not stop `import profiler`")

import simulator

names = ["simulator"] + [m.name for m in pkgutil.walk_packages(simulator.__path__, "simulator.", onerror=reraise)]
for name in names:
    importlib.import_module(name)
result = simulator.simulate([[64, 64], [512]], 30)
print(json.dumps({"modules": names, "ne": result.ne, "qps": result.qps}))
'''


def run_python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_module_imports_and_simulates_without_the_profiler():
    report = json.loads(run_python(WITHOUT_PROFILER))
    assert len(report["modules"]) >= MIN_MODULES, report["modules"]
    assert {"simulator.core", "simulator.config", "simulator.bench", "simulator.plot"} <= set(report["modules"])
    assert report["ne"] == pytest.approx(0.5763649281826977, rel=1e-12)
    assert report["qps"] == pytest.approx(26_286.7087, rel=1e-9)


def test_importing_the_simulator_does_not_import_torch():
    out = run_python("import sys, simulator; print('torch' in sys.modules)")
    assert out.strip() == "False"
