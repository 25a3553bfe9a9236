"""The layout the code promises, checked on its imports: no cycles, no upward imports, one place for each job.

Imports are read with `ast` from every module of the three packages, at module level and inside functions alike
(a lazy import is still a dependency), so these checks need nothing to be importable. Imports under
`if TYPE_CHECKING:` are left out: they name types for annotations and never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("complexity", "profiler", "simulator")
# Library parts of the profiler, lowest first: a module may import its own part and the parts before it, never
# one after it. commands/ and cli.py sit on top of everything.
PROFILER_LAYERS = (
    ("arch", "formulas", "workload", "source", "hardware"),
    ("counting", "predict", "measuring", "analysis", "fit"),
    ("checks",),
    ("render",),
    ("commands", "cli", "__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Project modules `name` imports (`from a.b import c` is a.b.c when that is a module, else a.b)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    type_only = {id(child) for node in ast.walk(tree) if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                 for child in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] in PACKAGES)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_modules_are_found():
    assert {"profiler.source", "profiler.checks.validate", "complexity.config", "simulator.core"} <= set(GRAPH)
    assert GRAPH["profiler.checks.validate"] >= {"profiler.source", "profiler.formulas.flops"}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the graph's strongly connected components of more than one module (its cycles)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_cycles():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert strongly_connected(GRAPH) == []


def test_the_zoo_and_the_simulator_import_nothing_of_the_profiler():
    upward = {name: sorted(t for t in targets if not t.startswith(name.split(".")[0]))
              for name, targets in GRAPH.items() if not name.startswith("profiler")}
    allowed = {"complexity.inputs"}  # the shared torch-free input checks
    assert {name: [t for t in targets if t not in allowed] for name, targets in upward.items()
            if any(t not in allowed for t in targets)} == {}


def test_zoo_core_sits_below_models_and_training():
    for name, targets in GRAPH.items():
        if name.startswith("complexity.core"):
            assert not any(t.startswith(("complexity.models", "complexity.training")) for t in targets), name


def profiler_layer(name: str) -> int:
    part = name.split(".")[1] if "." in name else "__init__"
    return next((i for i, layer in enumerate(PROFILER_LAYERS) if part in layer), -1)


def test_profiler_parts_import_only_downward():
    offenders = []
    for name, targets in GRAPH.items():
        if not name.startswith("profiler.") or profiler_layer(name) < 0:
            continue
        for target in targets:
            if target.startswith("profiler.") and profiler_layer(target) > profiler_layer(name):
                offenders.append(f"{name} -> {target}")
    assert offenders == []


def test_every_profiler_module_has_a_layer():
    assert [name for name in GRAPH if name.startswith("profiler.") and profiler_layer(name) < 0] == []


@pytest.mark.parametrize("pattern, why", [
    (r"ComplexityForCausalLM\(|AutoModelForCausalLM|AutoConfig", "builds a real module"),
    (r"\bopen\(|json\.load\(", "opens a model config file"),
    (r"model_type == .complexity.|__module__\.startswith", "tells a zoo model from a HuggingFace one"),
])
def test_model_source_is_the_one_place_that_resolves_a_model(pattern, why):
    """ModelSource (profiler/source.py) alone builds modules, reads model configs and branches zoo vs HF.
    Allowed elsewhere: the hardware profiles' own JSON (hardware.py), /proc/cpuinfo (calibration.py) and the
    CLI's devnull; the adapter that maps a config to an ArchSpec (arch.py) reads a dict, never a file."""
    allowed = {"profiler.source", "profiler.hardware", "profiler.measuring.calibration", "profiler.cli",
               "profiler.commands.simulate"}
    found = [name for name, path in MODULES.items() if name.startswith("profiler") and name not in allowed
             and re.search(pattern, path.read_text(encoding="utf-8"))]
    assert found == [], f"{found} {why}"


def test_library_code_sets_no_torch_threads():
    setters = [name for name, path in MODULES.items() if "set_num_threads" in path.read_text(encoding="utf-8")]
    assert setters == ["profiler.commands.settings"]
