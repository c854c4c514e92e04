"""Claims about the launch buttons (Colab and Binder) and the environment that backs Binder.

Binder itself cannot be reached from here: these tests check the configuration, the environment file that
repo2docker reads, and the links that the built site carries (when the site is built, see tests/test_site.py).
"""

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
SITE = ROOT / "_build" / "html"
REQUIRED = os.environ.get("STAINBOOK_REQUIRE_SITE") == "1"
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def pip_requirements() -> list[str]:
    (pip,) = [d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict)]
    return pip


def expected_links(chapter: str) -> dict[str, str]:
    """The launch links of a chapter, from the repository and launch settings of _config.yml."""
    repo = CONFIG["repository"]
    org, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", repo["url"]).groups()
    branch, launch = repo["branch"], CONFIG["launch_buttons"]
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}[launch["notebook_interface"]]
    path = f"{chapter}.ipynb"
    return {
        "binder": f"{launch['binderhub_url']}/v2/gh/{org}/{name}/{branch}?urlpath={ui}/{path}",
        "colab": f"{launch['colab_url']}/github/{org}/{name}/blob/{branch}/{path}",
    }


def test_binder_and_colab_launch_buttons_are_configured_side_by_side():
    launch = CONFIG["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"].startswith("https://github.com/"), "Binder's gh provider needs a GitHub repo"


def test_binder_reads_the_root_environment_file():
    # repo2docker uses a binder/ (or .binder/) folder instead of the root files when one exists.
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists()
    assert not (ROOT / "requirements.txt").exists(), "one environment file, not two that could disagree"
    assert (ROOT / "environment.yml").is_file()


def test_environment_installs_the_cpu_torch_of_the_makefile_and_the_package_itself():
    pip = pip_requirements()
    pin = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert pin in pip, "the same torch pin as the Makefile"
    assert CPU_INDEX in pip, "the CPU wheels' index, so that Linux gets the CPU build"
    assert "-e ." in pip, "the package itself (repo2docker copies the repository in first when it sees -e .)"
    assert "python=3.11" in ENVIRONMENT["dependencies"], "Binder needs an exact Python version"


def test_environment_has_what_the_chapters_need_under_a_kernel():
    conda = [d for d in ENVIRONMENT["dependencies"] if isinstance(d, str)]
    names = {re.split(r"[<>=]", d)[0] for d in conda} | {re.split(r"[<>=]", d)[0] for d in pip_requirements()}
    for package in ("ipywidgets", "ipykernel", "matplotlib", "torch", "pillow", "scipy"):
        assert package in names, package
    book = re.search(r"^book = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S).group(1)
    extras = re.findall(r'"([^"]+)"', book)
    assert extras, "the book extra of pyproject.toml"
    assert {re.split(r"[<>=]", e)[0] for e in extras} <= names, "every package of the book extra"


@pytest.mark.parametrize("chapter", ["book/corruptions", "book/intro"])
def test_built_chapter_carries_the_binder_link_beside_the_colab_link(chapter):
    page = SITE / f"{chapter}.html"
    if not page.exists():
        if REQUIRED:
            raise AssertionError(f"the built site is missing: {page}")
        pytest.skip("no built site (run make book)")
    html = page.read_text().replace("&amp;", "&")
    links = expected_links(chapter)
    assert links["binder"] in html, links["binder"]
    assert links["colab"] in html, links["colab"]
    launch = html[html.index("dropdown-launch-buttons") :]
    assert launch.index("Binder") < launch.index("</ul>") and launch.index("Colab") < launch.index("</ul>")
