"""What the README and docs show a user works as shown."""

from pathlib import Path

from fraudops.ingest import load_mapping

ROOT = Path(__file__).resolve().parents[1]


def test_example_mapping_loads() -> None:
    """The YAML mapping the README points to is a valid mapping."""
    mapping = load_mapping(str(ROOT / "docs" / "mapping-example.yaml"))
    assert "acquirer-x" == mapping.name


def test_readme_gives_the_two_commands() -> None:
    """The README opens with the two set-up commands CI and users rely on."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("make demo") < readme.index("## Usage")
    assert readme.index("make test") < readme.index("## Usage")
