"""The README is the front door and the guides in docs/ hold the rest: every guide is linked, every link leads to
a file, every training command in them passes the command-line check as written, and the configuration
reference is the one the schema generates."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import CONF_DIR

from pricernn.config.reference import reference
from pricernn.tasks.cli import check_command_line

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def train_commands(text: str) -> list[str]:
    """The ``python scripts/train.py ...`` commands of a page: lines of its code blocks (continued lines joined)
    and inline code."""
    found = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        found += [line for line in block.replace("\\\n", " ").splitlines() if "python scripts/train.py" in line]
    found += re.findall(r"`([^`\n]*python scripts/train\.py[^`\n]*)`", text)
    return found


def test_the_readme_is_short_and_links_every_guide():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    lines = readme.splitlines()
    assert lines[3].startswith("python3 -m venv .venv") and lines[4] == "python -m pytest -q"  # the two set-ups first
    for guide in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{guide.name})" in readme, guide.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_leads_to_a_file(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if not target.startswith(("http://", "https://")):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_training_command_passes_the_command_line_check(page):
    commands = train_commands(page.read_text())
    for command in commands:
        words = shlex.split(re.sub(r"<[^>]+>", "x", command), comments=True)  # <run>: a run the user names
        check_command_line("train", words[words.index("scripts/train.py") + 1 :], CONF_DIR)
    if page.name in ("README.md", "data.md", "sweeps.md"):
        assert commands, page.name  # the reader finds these pages' commands here: they are checked, not skipped


def test_the_configuration_reference_is_generated_from_the_schema():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference(Path(CONF_DIR)), "stale: python -m pricernn.config.reference > docs/configuration.md"
