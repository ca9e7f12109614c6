"""README.md's tables of systems and experiments are the registries' own (`athanor list --markdown`)."""

from pathlib import Path

from athanor.cli import markdown_tables

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- tables: made by `athanor list --markdown` from the registries; tests/test_readme.py keeps them equal -->"
END = "<!-- /tables -->"


def test_readme_tables_match_the_registries():
    text = README.read_text()
    assert START in text and END in text, "README.md lost the markers around its generated tables"
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == markdown_tables(), ("README.md's tables differ from the registries: paste the output of "
                                        "`athanor list --markdown` between the markers")
