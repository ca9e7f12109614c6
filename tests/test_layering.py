"""One-way layering, read from the source (every import, at the top of a module or inside a function):

    cli -> api -> experiments -> systems -> envs / data -> core -> viz          report -> core -> viz

``viz`` imports nothing else from athanor; ``core`` no system, experiment, report or API; ``envs`` no agent;
system families never import each other; every pixel is made in ``viz`` (matplotlib lives there alone) and
encoded to a file by ``core`` or ``viz``. ARCHITECTURE.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "athanor"

# package (first component under athanor) -> the athanor packages it may import; "" is athanor/__init__.py
ALLOWED = {
    "viz": {"viz"},
    "core": {"core", "viz"},
    "report": {"report", "core", "viz"},
    "envs": {"envs", "core"},
    "data": {"data", "core", "envs"},
    "systems": {"systems", "core", "data", "envs", "viz"},
    "experiments": {"experiments", "core", "systems", "data", "envs", "viz"},
    "api": {"api", "core", "report", "systems", "experiments", "data", "envs", "viz"},
    "tour": {"tour", "api", "core", "experiments", "report"},
    "cli": {"cli", "tour", "api", "core", "data", "experiments", "systems", "viz", "report"},
    "__main__": {"cli"},
}
DRAWING = ("matplotlib", "PIL")  # only viz draws
ENCODING = ("imageio",)  # pixels to files (and back): viz, and core's artifact writer and readers


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts if rel.parts[-1] != "__init__" else rel.parts[:-1]
        yield path, parts


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            if node.module == "athanor":  # `from athanor import x`: x may be a package
                out += [f"athanor.{a.name}" for a in node.names if (SRC / a.name).exists()
                        or (SRC / f"{a.name}.py").exists()]
    return out


MODULES = list(_modules())


def _violations(parts: tuple[str, ...], imports: list[str]) -> list[str]:
    layer = parts[0]
    allowed = ALLOWED[layer]
    bad = []
    for name in imports:
        if name.startswith("athanor."):
            target = name.split(".")
            if target[1] not in allowed:
                bad.append(f"{name} (layer '{target[1]}' is not below '{layer}')")
            elif layer == "systems" and len(parts) > 2 and target[1] == "systems":
                # a method file imports its own family only: families never import each other
                if len(target) < 3 or target[2] != parts[1]:
                    bad.append(f"{name} (another family, or the registry: families import core instead)")
        root = name.split(".")[0]
        if root in DRAWING and layer != "viz":
            bad.append(f"{name} (only viz draws)")
        if root in ENCODING and layer not in ("viz", "core"):
            bad.append(f"{name} (files are written and read by core)")
    return bad


@pytest.mark.parametrize("path, parts", MODULES, ids=["/".join(p) or "athanor" for _, p in MODULES])
def test_imports_run_one_way(path, parts):
    if not parts:
        return  # athanor/__init__.py
    bad = _violations(parts, _imports(path))
    assert not bad, f"{'/'.join(parts)} imports " + "; ".join(bad)


def test_the_rules_catch_what_they_forbid(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import athanor.report.html\n"
                   "def f():\n    from athanor.systems import get_system\n    from matplotlib import pyplot\n")
    assert len(_violations(("core", "runloop"), _imports(src))) == 3
    assert _violations(("systems", "generative", "vae"), ["athanor.systems.offline_rl.iql"])
    assert _violations(("systems", "generative", "vae"), ["athanor.systems"])
    assert not _violations(("systems", "generative", "vae"), ["athanor.systems.generative.common", "athanor.envs"])
    assert _violations(("envs", "pointmaze"), ["athanor.systems.offline_rl.iql"])
    assert _violations(("viz", "maze"), ["athanor.core.errors"])


def test_every_package_has_a_rule():
    assert {parts[0] for _, parts in MODULES if parts} <= set(ALLOWED)
