"""The architecture the tree shows: the topology core imports no model code, the package
has no import cycle, and no file of the repository points outside it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "topovlm"
# the project's notes beside the repository (a clone and the published book do not have them);
# spelt in parts so that this file does not itself name them
OUTSIDE = tuple(
    "".join(parts)
    for parts in (("../", "shared"), ("shared/", "paper"), ("METHOD", ".md"), ("STYLE", ".md"), ("TopoVLM-", "summary"))
)
MODEL_SIDE = ("torch", "transformers", "peft", "accelerate", "safetensors", "gguf")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    top = {id(node) for node in tree.body}
    for node in tree.body:  # imports under a module-level `if`/`try` count as module level
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import a, b: each name is a module
                out += [(f"{mod}.{a.name}", id(node) in top) for a in node.names]
            else:
                out.append((mod, id(node) in top))
    return out


def package_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_topology_core_imports_no_model_code():
    core = sorted((PACKAGE / "topology").rglob("*.py"))
    assert len(core) >= 10
    for path in core:
        for mod, _ in imports(path):
            assert mod.split(".")[0] not in MODEL_SIDE, f"{path.relative_to(ROOT)} imports {mod}"
            if mod.startswith("topovlm"):
                assert mod.startswith(("topovlm.topology", "topovlm._checks")), (
                    f"{path.relative_to(ROOT)} imports {mod}, outside the topology core"
                )


def test_importing_the_package_loads_no_torch():
    code = f"import sys, topovlm, topovlm.topology.search; print(sorted(m for m in {MODEL_SIDE!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_import_cycle_at_module_level():
    """Module-level imports between the package's modules form no cycle (a module importing
    a name from its own package's __init__ counts: that is how tasks <-> tasks.avqa was one)."""
    names = {module_name(p): p for p in package_files()}
    graph = {}
    for name, path in names.items():
        deps = set()
        for mod, top in imports(path):
            if not top or not mod.startswith("topovlm"):
                continue
            while mod not in names and "." in mod:  # `from pkg import name` -> pkg
                mod = mod.rsplit(".", 1)[0]
            # importing a.b.c runs a.b's __init__ first (the root package's is already running)
            if mod in names and mod != name:
                deps.add(mod)
            for parent in (mod.rsplit(".", k)[0] for k in range(1, mod.count("."))):
                if parent in names and parent != name and not name.startswith(parent + "."):
                    deps.add(parent)
        graph[name] = deps
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == "open":
                cycle = stack[stack.index(m) :] + [m]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in graph:
        if n not in state:
            visit(n)


def test_package_imports_sit_at_the_top_of_modules():
    """Only the heavy optional libraries load inside functions; the package's own modules
    and everything else are imported at the top."""
    lazy_ok = MODEL_SIDE + (
        "tokenizers",
        "dionysus",
        "gudhi",
        "persim",
        "easy_vqa",
        "PIL",
        "lmms_eval",
        "huggingface_hub",
    )
    torch_modules = ("topovlm.models.videollama2_arch",)  # defines nn.Module classes: torch at import
    late = []
    for path in package_files():
        for mod, top in imports(path):
            if not top and mod.split(".")[0] not in lazy_ok and mod not in torch_modules:
                late.append(f"{path.relative_to(ROOT)}: {mod}")
    assert not late, "imports inside functions:\n" + "\n".join(late)


def test_no_file_points_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = []
    for f in files:
        path = ROOT / f
        if (
            path.suffix not in (".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".sh", ".ipynb", ".txt", "")
            or not path.is_file()
        ):
            continue
        text = path.read_text(errors="replace")
        for needle in OUTSIDE:
            if needle in text:
                bad.append(f"{f}: {needle}")
    assert not bad, bad


#: The rooms of the package, bottom to top: a module imports (at module level) only from
#: its own room or the rooms below it. Private infrastructure (``topovlm._*``) is below all.
ROOMS = [
    ("samples", ("topovlm.samples", "topovlm.calibration", "topovlm.tasks", "topovlm.notes")),
    ("topology core", ("topovlm.topology",)),
    ("models", ("topovlm.models",)),
    (
        "pipeline stages",
        (
            "topovlm.forward",
            "topovlm.extract",
            "topovlm.prune",
            "topovlm.progressive",
            "topovlm.outcome_store",
            "topovlm.intervals",
            "topovlm.efficiency",
            "topovlm.reports",
            "topovlm.plots",
            "topovlm.baselines",
            "topovlm.evaluate",
            "topovlm.status",
        ),
    ),
    ("training", ("topovlm.training",)),
    ("studies", ("topovlm.studies",)),
    ("workflows", ("topovlm.workflows",)),
    ("command line", ("topovlm.cli",)),
]


def room_of(module: str) -> int | None:
    if module == "topovlm" or module.split(".")[1].startswith("_"):
        return None  # the package's front door and its private infrastructure
    for i, (_, prefixes) in enumerate(ROOMS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return -1


def test_every_module_has_a_room_and_no_import_runs_upward():
    """Studies import the pipeline, training imports the models and evaluation, the CLI
    calls the workflows; nothing below imports anything above it (the mini models do
    not import their training, the pipeline does not import a study)."""
    names = {module_name(p): p for p in package_files()}
    homeless = [n for n in names if room_of(n) == -1]
    assert not homeless, f"modules in no room of ROOMS: {homeless}"
    upward = []
    for name, path in names.items():
        here = room_of(name)
        if here is None:
            continue
        for mod, top in imports(path):
            if not top or not mod.startswith("topovlm."):
                continue
            there = room_of(mod)
            if there is not None and there > here:
                upward.append(f"{name} ({ROOMS[here][0]}) imports {mod} ({ROOMS[there][0]})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_command_line_only_parses_and_calls_the_workflows():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    used = {mod for mod, _ in imports(PACKAGE / "cli.py") if mod.startswith("topovlm.")}
    assert used <= {"topovlm._checks", "topovlm.workflows", "topovlm.topology.search", "topovlm.training.heal"}, used
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in ("main", "_fail", "_run")):
        assert len(fn.body) <= 8, f"cli.{fn.name} does more than parse and call ({len(fn.body)} statements)"
