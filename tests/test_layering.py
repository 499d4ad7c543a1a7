"""The sub-packages are the stages of the data flow and import only earlier stages (no cycle).

Checked on the source (every `import harness...` / `from harness... import`, also inside functions),
so a lazy import inside a function cannot hide a backwards dependency.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
# Earlier stages first. A module may import its own stage and any earlier one.
STAGES = ("errors", "extras", "files", "cache", "shipped", "config", "metrics", "data", "conditions", "evaluation", "zegclip",
          "models", "run", "report", "cli")


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness") and node.level == 0:
            if node.module == "harness":
                out |= {f"harness.{a.name}" for a in node.names}
            else:
                out.add(node.module)
    return out


def test_every_import_points_to_an_earlier_stage():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _stage(".".join(rel.parts).removesuffix(".__init__"))
        if own == "__init__":
            continue
        assert own in STAGES, f"{path}: a module outside the known stages {STAGES}"
        for module in _imports(path):
            other = _stage(module)
            if other in STAGES and STAGES.index(other) > STAGES.index(own):
                wrong.append(f"{rel} ({own}) imports {module} ({other})")
    assert not wrong, "\n".join(wrong)


def test_metrics_import_no_later_stage():
    for path in sorted((PACKAGE / "metrics").rglob("*.py")):
        stages = {_stage(m) for m in _imports(path)}
        assert stages <= {"metrics", "errors"}, (path, stages)
