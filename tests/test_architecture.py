"""The house: the engine's stages as subpackages whose imports run one way, no Qt in the engine,
the window on the engine's facade, and files and functions of a size a newcomer can read."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "egbad_core"
FORBIDDEN = ("PySide6", "pyqtgraph", "superqt", "egbad_gui", "PyQt5", "PyQt6")
STAGES = ("data", "model", "train", "score", "run", "system", "deploy")


def core_files():
    return sorted(CORE.rglob("*.py"))


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_core_sources_never_import_qt_or_the_gui():
    assert len(core_files()) > 30  # the subpackages' modules are read, not only the top floor's
    for path in core_files():
        for name in imported(path):
            assert not name.startswith(FORBIDDEN), f"{path.relative_to(ROOT)} imports {name}"


def test_importing_the_whole_core_loads_no_qt():
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in core_files()]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\nassert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_every_stage_is_a_subpackage_that_says_what_it_holds_and_may_import():
    for stage in STAGES:
        init = CORE / stage / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{stage}/__init__.py does not say what it may import"
        for module in (CORE / stage).glob("*.py"):
            if module.stem != "__init__":
                assert f"``{module.stem}``" in doc, f"{stage}/__init__.py does not name {module.name}"


def test_demo_data_ships_as_package_data():
    from importlib import resources

    names = {p.name for p in resources.files("egbad_resources").iterdir()}
    assert {"demo_train.csv.gz", "demo_test.csv.gz"} <= names


def test_the_layer_contracts_hold():
    """import-linter's contracts in pyproject.toml: the stages stand on one another top to bottom,
    the engine imports no Qt, and the window reaches the engine only through its facade."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "The engine's stages stand on one another, top to bottom KEPT" in result.stdout
    assert "3 kept, 0 broken" in result.stdout


def test_the_window_imports_only_the_engines_facade_and_vocabularies():
    allowed = {"egbad_core", "egbad_core.session", "egbad_core.events", "egbad_core.config", "egbad_core.errors",
               "egbad_core.pictures"}
    for path in (ROOT / "egbad_gui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("egbad_core"):
                names = {node.module} if node.module != "egbad_core" else {f"egbad_core.{a.name}" for a in node.names}
                assert names <= allowed, f"{path.name} imports {names - allowed}"


@pytest.mark.parametrize("package", ["egbad_core", "egbad_gui"])
def test_files_and_functions_stay_a_readable_size(package):
    """At most 450 lines a file, 60 a function and 8 parameters (more go in a dataclass)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text()
        assert source.count("\n") <= 450, f"{path.relative_to(ROOT)} has {source.count(chr(10))} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                assert node.end_lineno - node.lineno < 60, f"{where} is {node.end_lineno - node.lineno + 1} lines"
                args = node.args
                count = len(args.posonlyargs + args.args + args.kwonlyargs)
                count -= bool(args.args) and args.args[0].arg in ("self", "cls")
                assert count <= 8, f"{where} takes {count} parameters"
