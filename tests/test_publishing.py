"""Claims about publishing: the licences, the citation, the workflow that tests and deploys, the repository URL."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import repo_url  # noqa: E402

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())


def readme_test_command() -> str:
    """The README's test command: the `make ...` line commented as the test suite."""
    match = re.search(r"^(make \w+)\s+# the whole test suite", (ROOT / "README.md").read_text(), re.M)
    assert match, "the README names its test command"
    return match.group(1)


def test_ci_script_runs_the_readme_test_command():
    lines = [x.strip() for x in (ROOT / ".ci" / "run").read_text().splitlines() if x.strip() and x[0] != "#"]
    assert readme_test_command() in lines


def test_workflow_runs_ci_script_on_push_and_pull_request():
    triggers = WORKFLOW[True] if True in WORKFLOW else WORKFLOW["on"]  # YAML 1.1 reads the key `on` as true
    assert "push" in triggers and "pull_request" in triggers
    runs = [step.get("run", "") for step in WORKFLOW["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in runs


def test_workflow_deploys_the_built_site_to_pages_only_from_main():
    steps = WORKFLOW["jobs"]["test"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert "refs/heads/main" in upload["if"] and "push" in upload["if"]
    deploy = WORKFLOW["jobs"]["deploy"]
    assert deploy["needs"] == "test" and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages")


def test_workflow_caches_the_venv_and_the_fast_profile_runs():
    cached = " ".join(
        s["with"]["path"] for s in WORKFLOW["jobs"]["test"]["steps"] if "actions/cache" in s.get("uses", "")
    )
    assert ".venv" in cached and "runs" in cached


def test_licences_are_present_and_named_in_readme_and_site_footer():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "CC BY 4.0" in (ROOT / "LICENSE-BOOK.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "LICENSE" in readme and "CC BY 4.0" in readme and "CC BY-NC-SA" in readme
    footer = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["extra_footer"]
    assert "CC BY 4.0" in footer and "MIT" in footer and "MVTec AD" in footer


def test_citation_file_cites_stainbook_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"].startswith("stainbook")
    paper = cff["references"][0]
    assert [a["family-names"] for a in paper["authors"]] == ["Collin", "De Vleeschouwer"]
    assert "Stain-shaped noise" in paper["title"]
    assert "Stain-shaped noise" in (ROOT / "README.md").read_text()


def test_every_copy_of_the_repository_url_agrees_with_the_config():
    assert repo_url.check() == []


def test_setting_a_new_repository_url_updates_every_copy(tmp_path):
    names = ["_config.yml", "pyproject.toml", "CITATION.cff", "README.md"]
    for name in names:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("figures"))
    new = "https://github.com/someone-else/my-book"
    changed = repo_url.set_url(new, root=tmp_path)
    assert repo_url.check(root=tmp_path) == []
    assert repo_url.config_url(tmp_path) == new
    assert {p.name for p in changed} >= set(names)
    assert "https://someone-else.github.io/my-book/" in (tmp_path / "README.md").read_text()
    assert "github.com/stainbook/stainbook" not in "".join(p.read_text() for p in changed)


def test_repository_url_tool_refuses_a_url_that_is_not_a_github_repository():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "repo_url.py"), "https://example.com/x; rm -rf /"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "not a GitHub repository URL" in proc.stderr


CODE_LINE = re.compile(r"^\*\*Code:\*\* (.+)$", re.M)
MODULE_LINK = re.compile(r"\[`(stainlib\.\w+)`\]\((https://github\.com/[^)\s]+)/blob/([^/)\s]+)/([^)\s]+)\)")


def chapter_sources():
    return sorted(p for p in (ROOT / "book").glob("*.md") if p.name != "references.md")


@pytest.mark.parametrize("path", chapter_sources(), ids=lambda p: p.stem)
def test_every_chapter_links_to_existing_stainlib_modules_on_the_configured_repository_and_branch(path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    line = CODE_LINE.search(path.read_text())
    assert line, f"{path.name} has no **Code:** line"
    links = MODULE_LINK.findall(line.group(1))
    assert links and len(links) == line.group(1).count("](")  # every link on the line is a module link
    for module, url, branch, file in links:
        assert (url, branch) == (config["url"], config["branch"])
        assert file == module.replace(".", "/") + ".py", f"{module} links to {file}"
        assert (ROOT / file).is_file(), f"{path.name} links to {file}, which does not exist"
    # the line sits right after the "What you will learn" list, before the first code cell after it
    text = path.read_text()
    learn = text.index("**What you will learn**")
    assert learn < line.start() < text.index("```{code-cell}", learn)


@pytest.mark.parametrize("path", chapter_sources(), ids=lambda p: p.stem)
def test_the_notebook_twin_carries_the_same_code_links(path):
    nb = path.with_suffix(".ipynb").read_text()
    md_links = MODULE_LINK.findall(CODE_LINE.search(path.read_text()).group(1))
    assert md_links and all(f"/blob/{branch}/{file})" in nb for _, _, branch, file in md_links)


def test_repository_url_check_names_a_chapter_whose_code_link_disagrees(tmp_path):
    for name in ["_config.yml", "pyproject.toml", "CITATION.cff", "README.md"]:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("figures"))
    url = repo_url.config_url(tmp_path)
    chapter = tmp_path / "book" / "networks.md"
    text = chapter.read_text()
    assert f"]({url}/blob/main/stainlib/models.py)" in text
    chapter.write_text(
        text.replace(f"]({url}/blob/main/stainlib/models.py)", "](https://github.com/x/y/blob/main/z.py)")
    )
    twin = tmp_path / "book" / "data.ipynb"
    twin.write_text(twin.read_text().replace(f"{url}/blob/main/", f"{url}/blob/dev/"))
    problems = repo_url.check(root=tmp_path)
    assert any(p.startswith("book/networks.md: https://github.com/x/y") for p in problems), problems
    assert any(p.startswith("book/data.ipynb: a link to branch dev") for p in problems), problems
    assert not any("REPOSITORY" in p or "pyproject" in p for p in problems)
