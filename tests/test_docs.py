"""The documentation holds together: README.md is a short front door (at most 12 KB, "Install"
within the first screen, the two set-up commands CI uses), and every relative link and
``#anchor`` in README.md and docs/*.md resolves (the file exists; the anchor is a heading of
that file under GitHub's slug rules), and every docs page is reachable from README.

Plain text checks, no ComfyUI: the fast tier.
"""
import os
import re
import unicodedata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_BYTES = 12_000
INSTALL_WITHIN_LINES = 30


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are not links)."""
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return _CODE_SPAN.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: markdown links reduced to their text, lower case,
    every character that is not a letter, digit, space, hyphen or underscore dropped, spaces
    to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat == "Mn":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def anchors(path: str) -> set:
    """Every anchor GitHub makes for the headings of a markdown file (repeats get -1, -2, ...)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = _FENCE.sub("", text)
    seen, result = {}, set()
    for m in _HEADING.finditer(text):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def links(path: str) -> list:
    """(line number, target) of every markdown link and image in the file's prose."""
    with open(path, encoding="utf-8") as f:
        text = _prose(f.read())
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _LINK.finditer(text)]


def doc_files(root: str) -> list:
    docs = os.path.join(root, "docs")
    pages = sorted(os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md"))
    return [os.path.join(root, "README.md")] + pages


def broken_links(root: str) -> list:
    """'file:line: target: why' for every relative link or anchor that does not resolve."""
    problems = []
    for path in doc_files(root):
        rel = os.path.relpath(path, root)
        for line, target in links(path):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            here = os.path.dirname(path)
            dest = os.path.normpath(os.path.join(here, file_part or os.path.basename(path)))
            dest_rel = os.path.relpath(dest, root).replace(os.sep, "/")
            where = f"{rel}:{line}: {target}"
            if dest_rel.startswith("../"):
                problems.append(f"{where}: outside the repository")
                continue
            if not os.path.exists(dest):
                problems.append(f"{where}: {dest_rel} does not exist")
                continue
            if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                problems.append(f"{where}: no heading with the anchor #{anchor} in {dest_rel}")
    return problems


def unreachable_pages(root: str) -> list:
    """docs/*.md pages that no chain of links from README.md reaches."""
    pages = {os.path.normpath(p) for p in doc_files(root)}
    start = os.path.normpath(os.path.join(root, "README.md"))
    reached, todo = {start}, [start]
    while todo:
        path = todo.pop()
        for _, target in links(path):
            file_part = target.partition("#")[0]
            if not file_part or re.match(r"^[a-z][a-z0-9+.-]*:", file_part, re.I):
                continue
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            if dest in pages and dest not in reached:
                reached.add(dest)
                todo.append(dest)
    return sorted(os.path.relpath(p, root) for p in pages - reached)


def readme_commands(root: str) -> list:
    """The commands of README's "The two commands" code block, without their comments."""
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^## The two commands\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "README has no '## The two commands' section"
    block = re.search(r"^```[a-z]*\n(.*?)^```", m.group(1), re.S | re.M)
    assert block, "README's 'The two commands' has no code block"
    lines = (line.split("#", 1)[0].strip() for line in block.group(1).splitlines())
    return [line for line in lines if line]


def ci_commands(root: str) -> list:
    """The `make ...` commands .ci/run runs."""
    with open(os.path.join(root, ".ci", "run"), encoding="utf-8") as f:
        lines = (line.split("#", 1)[0].strip() for line in f)
        return [line for line in lines if re.match(r"^make\b", line)]


def test_every_link_and_anchor_resolves():
    assert broken_links(ROOT) == []


def test_every_docs_page_is_reachable_from_the_readme():
    assert unreachable_pages(ROOT) == []


def test_readme_is_a_short_front_door():
    with open(os.path.join(ROOT, "README.md"), "rb") as f:
        data = f.read()
    assert len(data) <= README_MAX_BYTES, f"README.md is {len(data)} bytes"
    head = data.decode("utf-8").splitlines()[:INSTALL_WITHIN_LINES]
    assert any(re.match(r"^#{1,3} .*\bInstall\b", line) for line in head), \
        f"no 'Install' heading in README's first {INSTALL_WITHIN_LINES} lines"


def test_readme_states_the_two_commands_ci_uses():
    readme = readme_commands(ROOT)
    assert readme == ["make demo", "make test"], readme
    ci = ci_commands(ROOT)
    assert ci and set(ci) <= set(readme), (ci, readme)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    for command in readme:  # each has a line saying what it does, below the block
        assert re.search(rf"^- `{command}` \S.*", text, re.M), command


@pytest.fixture
def tree(tmp_path):
    """A small repository: README linking two pages, one with headings to link to."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Page A\n\n## The `lumosx` command: serve & run\n\n## Notes\n\n## Notes\n\n"
        "Back to [README](../README.md#install).\n", encoding="utf-8")
    (tmp_path / "docs" / "b.md").write_text("# B\n\nSee [A](a.md#notes-1).\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# X\n\n## Install\n\n[a](docs/a.md#the-lumosx-command-serve--run) [b](docs/b.md)\n"
        "[web](https://example.com/x.md#nothing) `[code](nowhere.md)`\n\n"
        "```\n[fenced](nowhere.md)\n```\n", encoding="utf-8")
    return tmp_path


def test_the_checker_passes_a_sound_tree(tree):
    assert broken_links(str(tree)) == []
    assert unreachable_pages(str(tree)) == []


def test_the_checker_fails_on_a_broken_link_anchor_or_orphan(tree):
    with open(tree / "docs" / "b.md", "a", encoding="utf-8") as f:
        f.write("[gone](c.md) [typo](a.md#note) [out](../../x.md)\n")
    problems = broken_links(str(tree))
    assert len(problems) == 3, problems
    assert any("docs/c.md does not exist" in p for p in problems)
    assert any("#note in docs/a.md" in p for p in problems)
    assert any("outside the repository" in p for p in problems)
    (tree / "docs" / "orphan.md").write_text("# Nobody links here\n", encoding="utf-8")
    assert unreachable_pages(str(tree)) == [os.path.join("docs", "orphan.md")]


def test_slugs_follow_github():
    assert slug("The `lumosx` command: serve & run") == "the-lumosx-command-serve--run"
    assert slug("Tests: tiers, host matrix, CI") == "tests-tiers-host-matrix-ci"
    assert slug("Works with: the nodes Wan users already chain") == \
        "works-with-the-nodes-wan-users-already-chain"
    assert slug("Reference resize (`lumosx_core/image_prep.py`, `letterbox`)") == \
        "reference-resize-lumosx_coreimage_preppy-letterbox"
    assert slug("[Link](x.md) text") == "link-text"
