"""Where the tests find the repository and their fixtures, wherever a test module sits."""

from pathlib import Path

#: The tests/ folder.
TESTS = Path(__file__).resolve().parents[1]
#: The repository's root (pyproject.toml, README.md, deploy/, benchmarks/).
REPO = TESTS.parent
#: Audio and reference files shared by the tests (tests/fixtures, see SOURCES.md there).
FIXTURES = TESTS / "fixtures"
