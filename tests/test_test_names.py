"""pytest imports test files by their base name (rootdir mode, no packages): a unit test and an
end-to-end test of the same name cannot both be collected in `make test`'s one run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_test_file_names_are_unique_across_the_suite() -> None:
    tests = Path(__file__).parent
    names = Counter(p.name for p in tests.rglob("*.py"))
    assert not [name for name, n in names.items() if n > 1]
