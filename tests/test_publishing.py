"""Claims about publishing: the licences, the citation, the workflow that tests and deploys, the repository URL."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

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
