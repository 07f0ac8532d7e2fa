"""tests/unit mirrors gateway/: tests/unit/<package path>/test_<name>.py tests the module
gateway/<package path>/<name>.py (or the package gateway/<package path>/<name>/ as a whole).
Only tests/unit/repo/ holds tests of the repository itself (docs, README, fakes, this layout)."""
from __future__ import annotations

from tests.support import ROOT

UNIT = ROOT / "tests" / "unit"
GATEWAY = ROOT / "gateway"


def unmatched(unit=UNIT, gateway=GATEWAY) -> list[str]:
    """Every test file (outside repo/) whose name does not match a module or package."""
    bad = []
    for test in sorted(unit.rglob("test_*.py")):
        if unit / "repo" in test.parents:
            continue
        where = gateway / test.parent.relative_to(unit)
        name = test.stem.removeprefix("test_")
        if not ((where / f"{name}.py").is_file() or (where / name / "__init__.py").is_file()):
            bad.append(str(test.relative_to(unit)))
    return bad


def test_every_unit_test_file_names_a_module_or_package_of_the_gateway():
    assert unmatched() == []


def test_every_test_folder_is_a_package():
    """Basenames repeat (test_request.py per dialect), and pytest's default import mode
    tells them apart only by their packages."""
    assert sorted(str(d.relative_to(UNIT)) for d in UNIT.rglob("*")
                  if d.is_dir() and d.name != "__pycache__" and any(d.glob("test_*.py"))
                  and not (d / "__init__.py").is_file()) == []


def test_the_rule_refuses_a_file_named_after_nothing(tmp_path):
    (tmp_path / "gateway" / "state").mkdir(parents=True)
    (tmp_path / "gateway" / "state" / "redis.py").touch()
    (tmp_path / "unit" / "state").mkdir(parents=True)
    for name in ("test_redis.py", "test_state_redis.py", "test_state.py"):
        (tmp_path / "unit" / "state" / name).touch()
    assert unmatched(tmp_path / "unit", tmp_path / "gateway") == [
        "state/test_state.py", "state/test_state_redis.py"]
