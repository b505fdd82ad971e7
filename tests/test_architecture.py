import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "egbad_core"
FORBIDDEN = ("PySide6", "pyqtgraph", "egbad_gui", "PyQt5", "PyQt6")


def test_core_sources_never_import_qt_or_the_gui():
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_importing_the_whole_core_loads_no_qt():
    modules = [f"egbad_core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\nassert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_demo_data_ships_as_package_data():
    from importlib import resources

    names = {p.name for p in resources.files("egbad_resources").iterdir()}
    assert {"demo_train.csv.gz", "demo_test.csv.gz"} <= names


def test_the_layer_contracts_hold():
    """import-linter's contracts in pyproject.toml: the engine imports no Qt, and the window reaches
    the engine only through session, events, config, errors and pictures."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], capture_output=True, text=True, timeout=120,
                            cwd=CORE.parent)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_window_imports_only_the_engines_facade_and_vocabularies():
    allowed = {"egbad_core", "egbad_core.session", "egbad_core.events", "egbad_core.config", "egbad_core.errors",
               "egbad_core.pictures"}
    for path in (CORE.parent / "egbad_gui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("egbad_core"):
                names = {node.module} if node.module != "egbad_core" else {f"egbad_core.{a.name}" for a in node.names}
                assert names <= allowed, f"{path.name} imports {names - allowed}"
