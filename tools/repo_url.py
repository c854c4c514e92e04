"""The repository URL lives in one place, ``_config.yml`` (``repository.url``); this tool copies it everywhere else.

    python tools/repo_url.py https://github.com/OWNER/NAME   set the URL and update every copy
    python tools/repo_url.py --check                         exit 1, naming each file, where a copy disagrees

The copies: ``pyproject.toml`` (``[project.urls]``), ``CITATION.cff`` (``repository-code`` and ``url``), the Colab
install cell of every chapter (``REPOSITORY = "..."`` in ``book/*.md`` and ``book/*.ipynb``), the links of every
chapter's "**Code:**" line to the stainlib modules it uses (``](URL/blob/BRANCH/stainlib/models.py)``, in both files
of the pair; ``--check`` also checks their BRANCH against ``repository.branch``) and the book's address on GitHub Pages
in ``README.md``.  Jupyter Book derives the repository, Colab and Binder buttons from ``_config.yml`` itself.  Each
copy is replaced as text, so the files keep their layout.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL_RE = re.compile(r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
CONFIG_RE = re.compile(r"(^repository:\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*)(\S+)", re.M)
BRANCH_RE = re.compile(r"^repository:\n(?:[ \t]+.*\n)*?[ \t]+branch:[ \t]*(\S+)", re.M)
# A Markdown link to a file of the repository, ``](URL/blob/BRANCH/PATH)``: group 2 is the URL.
CODE_LINK_RE = re.compile(r"(\]\()(https://github\.com/[^/\s)\"\\]+/[^/\s)\"\\]+)(?=/blob/)")
LINK_BRANCH_RE = re.compile(r"\]\(https://github\.com/[^/\s)\"\\]+/[^/\s)\"\\]+/blob/([^/\s)\"\\]+)/")


def pages_url(url: str) -> str:
    """The GitHub Pages address of a repository: ``https://OWNER.github.io/NAME/``."""
    owner, name = url.rstrip("/").split("/")[-2:]
    return f"https://{owner.lower()}.github.io/{name}/"


# (file glob, pattern whose group 2 is the URL or the Pages address, which of the two it holds)
COPIES = [
    ("pyproject.toml", re.compile(r'(^Repository = ")([^"]+)', re.M), "url"),
    ("CITATION.cff", re.compile(r'(^repository-code: ")([^"]+)', re.M), "url"),
    ("CITATION.cff", re.compile(r'(^url: ")([^"]+)', re.M), "url"),
    ("book/*.md", re.compile(r'(REPOSITORY = ")([^"]+)'), "url"),
    ("book/*.ipynb", re.compile(r'(REPOSITORY = \\")([^"\\]+)'), "url"),
    ("book/*.md", CODE_LINK_RE, "url"),
    ("book/*.ipynb", CODE_LINK_RE, "url"),
    ("README.md", re.compile(r"(Read it online: <)([^>]+)"), "pages"),
]


def config_url(root: Path = ROOT) -> str:
    match = CONFIG_RE.search((root / "_config.yml").read_text())
    if not match:
        raise SystemExit("_config.yml has no repository.url")
    return match.group(2)


def config_branch(root: Path = ROOT) -> str:
    match = BRANCH_RE.search((root / "_config.yml").read_text())
    if not match:
        raise SystemExit("_config.yml has no repository.branch")
    return match.group(1)


def copies(root: Path = ROOT):
    """Every copy as (path, pattern, kind); a chapter without an install cell or code links is an error, as a
    missing copy is."""
    for pattern_glob, regex, kind in COPIES:
        paths = sorted(root.glob(pattern_glob))
        if not paths:
            raise SystemExit(f"no file matches {pattern_glob}")
        for path in paths:
            if path.name == "references.md":  # a plain page, no code
                continue
            yield path, regex, kind


def check(root: Path = ROOT) -> list[str]:
    """The copies that disagree with ``_config.yml``, as readable lines (empty when all agree)."""
    url = config_url(root)
    want = {"url": url, "pages": pages_url(url)}
    problems = []
    for path, regex, kind in copies(root):
        found = regex.findall(path.read_text())
        if not found:
            problems.append(f"{path.relative_to(root)}: no copy of the {kind} address found")
        problems += [
            f"{path.relative_to(root)}: {value} (expected {want[kind]})" for _, value in found if value != want[kind]
        ]
        if regex is CODE_LINK_RE:
            branch = config_branch(root)
            problems += [
                f"{path.relative_to(root)}: a link to branch {value} (expected {branch})"
                for value in LINK_BRANCH_RE.findall(path.read_text())
                if value != branch
            ]
    return problems


def set_url(new: str, root: Path = ROOT) -> list[Path]:
    """Write ``new`` into ``_config.yml`` and every copy; returns the files changed."""
    new = new.rstrip("/")
    if not URL_RE.match(new):
        raise SystemExit(f"not a GitHub repository URL: {new!r} (expected https://github.com/OWNER/NAME)")
    changed = []
    config = root / "_config.yml"
    text = config.read_text()
    updated = CONFIG_RE.sub(lambda m: m.group(1) + new, text, count=1)
    if updated != text:
        config.write_text(updated)
        changed.append(config)
    want = {"url": new, "pages": pages_url(new)}
    for path, regex, kind in copies(root):
        text = path.read_text()
        updated = regex.sub(lambda m, k=kind: m.group(1) + want[k], text)
        if updated != text:
            path.write_text(updated)
            changed.append(path)
    return changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", nargs="?", help="the new repository URL, https://github.com/OWNER/NAME")
    p.add_argument("--check", action="store_true", help="only check that every copy agrees with _config.yml")
    args = p.parse_args(argv)
    if args.url and not args.check:
        for path in set_url(args.url):
            print(f"updated {path.relative_to(ROOT)}")
    problems = check()
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"every copy agrees with _config.yml: {config_url()}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
