"""The README and the documentation site: short, every link resolving, every setting they name real.

The commands and queries they print run in tests/tasks/test_getting_started.py and
tests/tasks/test_nightly.py (the SQL cookbook on both backends)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.markdown import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
WRITTEN = [REPO_ROOT / "README.md", REPO_ROOT / "CHANGELOG.md", *PAGES]
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
# `[section] key` as the pages write a setting; Luigi's own sections are not the project's.
SETTING = re.compile(r"\[(?P<section>\w+)\] (?P<key>[a-z_]+)")
LUIGI_SECTIONS = {"core", "resources", "retcode", "worker", "scheduler"}


def test_the_readme_fits_on_two_screens_and_keeps_exactly_two_set_up_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make demo   #" in readme and "make test   #" in readme


@pytest.mark.parametrize("page", WRITTEN, ids=lambda path: path.name)
def test_every_relative_link_resolves(page):
    for match in LINK.finditer(page.read_text()):
        target = match["target"]
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or an anchor the site build checks
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if page.name == "CHANGELOG.md":
            continue  # included into docs/changelog.md, where the site build checks its links
        assert path.exists(), f"{page.name}: {target} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_each_page_says_what_the_reader_will_be_able_to_do_and_cites_nothing_a_reader_lacks(page):
    text = page.read_text()
    if page.name not in ("index.md", "changelog.md", "configuration.md"):
        opening = text.split("\n\n", 2)[1]
        assert opening.startswith("After this page"), f"{page.name} opens with {opening[:60]!r}"
    assert not re.search(r"\bissues? \d+|(?<!\.md)#\d+\b", text), f"{page.name} cites an issue number"
    assert "../shared" not in text and "DESIGN.md" not in text, f"{page.name} points outside the repository"


def test_every_setting_the_pages_name_is_a_parameter_of_that_section():
    from luigi.task_register import Register

    import tasks  # noqa: F401 - registers every task and config section

    classes = {}
    for name, cls in Register._get_reg().items():
        if isinstance(cls, type):
            classes[name] = cls
    unknown = []
    for page in WRITTEN:
        for match in SETTING.finditer(page.read_text()):
            section, key = match["section"], match["key"]
            if section in LUIGI_SECTIONS:
                continue
            cls = classes.get(section)
            if cls is None or key not in dict(cls.get_params()):
                unknown.append(f"{page.name}: [{section}] {key}")
    assert not unknown, "settings named in the docs that no task or section has:\n" + "\n".join(sorted(set(unknown)))


def test_the_site_builds_strictly(tmp_path):
    """`make docs`: a broken link, a missing anchor or a page left out of the navigation fails."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "command-line" / "index.html").read_text().count("overnight labeling-queue") >= 1
