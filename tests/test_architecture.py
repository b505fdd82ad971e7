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
