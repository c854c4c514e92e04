"""What the chapters share: the fast and full profiles, their one-line setup, and the project folder (all chapters).

Every chapter opens with ``settings = setup(profile, data_root, categories, epochs, image_size)``: ``auto`` is
``full`` (the real MVTec AD, the paper's settings) where CUDA is present **and** the real data is there, and ``fast``
(the synthetic dataset, small images, few epochs) otherwise, with one printed line that says which and why; the call
that fetches the data is printed once, by chapter 1 (:func:`fetch_instructions`).  So the default path never stops
for a missing dataset (on Colab, say).
:meth:`BookSettings.spec` turns the settings into the :class:`~stainlib.spec.RunSpec` of a run, which
:func:`stainlib.runs.load_or_train` and :func:`stainlib.sweep.sweep` take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checkpoints import read_config
from .data import MVTecAD
from .describe import budget_text, device_words
from .download import MANUAL_HELP
from .epochs import budget
from .files import project_dir, shown_path  # the chapters import them from here
from .runs import read_metrics, read_step_metrics
from .spec import RunSpec, defaults, paper_budget, stored_settings
from .synthetic import is_synthetic_category, make_synthetic
from .train import pick_device

__all__ = [
    "PROFILES",
    "BookSettings",
    "below_chance",
    "below_chance_by_map",
    "book_budgets",
    "fetch_instructions",
    "project_dir",
    "setup",
    "shown_path",
]

PROFILES = {
    # Synthetic data, small images, few epochs: every chapter runs on 2 CPUs in well under a minute.
    # Batches of 8 give the tiny training set (48 images) enough optimiser steps in few epochs.  ``synth_cap``: of the
    # six synthetic categories at these settings (3 seeds each), the one where AESc + Stain beats AESc + none by the
    # most, at the pixel level on every seed (``synth_grain``, the first choice, left every image AUROC near chance).
    "fast": {
        "data_root": "data/synthetic",
        "categories": ["synth_cap"],
        "epochs": 20,
        "image_size": 64,
        "batch_size": 8,
        "n_samples": 10,
    },
    # The paper's image size and epochs on the real MVTec AD (a GPU is advised); an epoch is one pass over the
    # training split (11 steps for bottle), not the authors' 2,000 samples: spec.BUDGETS["paper"] is theirs.
    "full": {
        "data_root": "data/mvtec_ad",
        "categories": ["bottle"],
        "epochs": 250,
        "image_size": 256,
        "batch_size": 16,
        "n_samples": 30,
    },
}


@dataclass(frozen=True)
class BookSettings:
    """A chapter's resolved settings: the profile's values with the chapter's overrides applied."""

    profile: str
    data_root: Path
    categories: list
    epochs: int
    image_size: int
    batch_size: int
    n_samples: int
    runs_dir: Path

    @property
    def category(self) -> str:
        """The first category: the one the chapters show."""
        return self.categories[0]

    @property
    def dataset(self) -> str:
        """The dataset's folder, relative to the project where it lies inside it (no machine path on a page)."""
        return shown_path(self.data_root)

    def where(self, category=None) -> str:
        """What a run of this profile is, in words: the data, the image size and the budget in steps and images."""
        category = category or self.category
        n_train = len(MVTecAD(self.data_root, category, "train", size=self.image_size))
        kind = "synthetic" if is_synthetic_category(category) else "MVTec AD"
        return (
            f"this run ({self.profile} profile: {kind} `{category}`, {self.image_size} px, "
            f"{budget_text(budget(n_train, 0, self.epochs, self.batch_size), self.batch_size)}, seed 0, the paper's "
            "decoder, trained on "
            f"{device_words(pick_device().type)})"
        )

    def data_words(self, category=None, size=None) -> str:
        """The dataset of this profile's runs as a caption or a table header names it: ``synthetic `synth_cap`, 64
        px`` or ``MVTec AD `bottle`, 256 px``; ``size`` names another image side than the profile's (a figure that
        loads its images at 256 px, say)."""
        category = category or self.category
        kind = "synthetic" if is_synthetic_category(category) else "MVTec AD"
        return f"{kind} `{category}`, {size or self.image_size} px"

    def provenance(self, category=None) -> str:
        """:meth:`where` without its "this run (...)" wrapping: the provenance line of an evidence box."""
        return self.where(category)[len("this run (") : -1]

    def spec(
        self, category=None, model: str = "aesc", corruption: str = "stain", seed: int = 0, color: str = "gray"
    ) -> RunSpec:
        """The spec of one run in this profile (default: AESc + stain on the first category)."""
        return RunSpec(
            data_root=str(self.data_root),
            category=category or self.category,
            model=model,
            corruption=corruption,
            image_size=self.image_size,
            color=color,
            epochs=self.epochs,
            seed=seed,
            batch_size=self.batch_size,
        )


def _resolve(data_root) -> Path:
    data = Path(data_root).expanduser()
    return (data if data.is_absolute() else project_dir() / data).resolve()


def _missing(data_root=None, categories=None) -> tuple[Path, list]:
    """The real dataset's folder (the ``full`` profile's unless given) and the wanted categories missing from it."""
    data = _resolve(data_root or PROFILES["full"]["data_root"])
    wanted = list(categories or PROFILES["full"]["categories"])
    return data, [c for c in wanted if not (data / c / "train" / "good").is_dir()]


def _auto_profile(cuda: bool, data_root=None, categories=None) -> tuple[str, str]:
    """What ``auto`` resolves to and why, in a few words: ``"full"`` where CUDA and the real data are both present,
    else ``"fast"``; the reason names no call (:func:`fetch_instructions` prints the one that fetches the data)."""
    _, missing = _missing(data_root, categories)
    if cuda and not missing:
        return "full", "a CUDA GPU and the MVTec AD data"
    no_data = f"no MVTec AD {', '.join(missing)}"  # where it goes: fetch_instructions
    if not cuda:
        return "fast", "no CUDA GPU" + (f", {no_data}" if missing else "")
    return "fast", no_data


def fetch_instructions(data_root=None, categories=None) -> str:
    """How to fetch the real MVTec AD data the ``full`` profile needs (the call to run), or an empty string where it
    is already there: printed once, by chapter 1 (Data); :func:`setup` prints only the profile in use."""
    data, missing = _missing(data_root, categories)
    if not missing:
        return ""
    # The call names the folder through project_dir(), so that it works from the repository root and from book/,
    # and the page prints no machine path.
    where = shown_path(data)
    target = f"project_dir() / {where!r}" if not Path(where).is_absolute() and where != data.name else repr(str(data))
    return (  # short lines: a page shows this in a box of fixed width
        f"No MVTec AD {', '.join(missing)} in {where}. To get it, run:\n"
        "    from stainlib.book import project_dir\n    from stainlib.download import download_mvtec\n"
        f"    download_mvtec({target}, {missing!r})"
    )


def setup(profile: str = "auto", data_root=None, categories=None, epochs=None, image_size=None, log=print):
    """Resolve a chapter's parameters into :class:`BookSettings`, and ``log`` one line: the profile (with why, for
    ``auto``) and the data, image size, budget and device in use.

    Any of ``data_root``, ``categories``, ``epochs`` and ``image_size`` overrides the profile's value.  The synthetic
    dataset is generated on first use; a missing real dataset is an error that says how to get it.  Runs go to
    ``runs/book-<profile>/`` in the checkout.
    """
    import torch

    why = ""
    if profile == "auto":
        profile, why = _auto_profile(torch.cuda.is_available(), data_root, categories)
    if profile not in PROFILES:
        raise ValueError(f"profile must be 'auto', 'fast' or 'full', got {profile!r}")
    given = {"data_root": data_root, "categories": categories, "epochs": epochs, "image_size": image_size}
    s = {**PROFILES[profile], **{k: v for k, v in given.items() if v is not None}}
    root = project_dir()
    data = _resolve(s["data_root"])
    missing = [c for c in s["categories"] if not (data / c / "train" / "good").is_dir()]
    if missing:
        if data.name == "synthetic":
            make_synthetic(data)
        else:
            raise FileNotFoundError(
                f"no category {', '.join(missing)} in {data}. On a machine with internet, run "
                f"stainlib.download.download_mvtec({str(data)!r}, {missing!r}); otherwise: "
                + MANUAL_HELP.format(root=data)
            )
    settings = BookSettings(
        profile=profile,
        data_root=data,
        categories=list(s["categories"]),
        epochs=int(s["epochs"]),
        image_size=int(s["image_size"]),
        batch_size=int(s["batch_size"]),
        n_samples=int(s["n_samples"]),
        runs_dir=root / "runs" / f"book-{profile}",
    )
    kind = "synthetic" if all(is_synthetic_category(c) for c in settings.categories) else "MVTec AD"
    log(
        f"profile {profile}{f' (auto: {why})' if why else ''}: {kind} {', '.join(settings.categories)}, "
        f"{settings.image_size} px, {settings.epochs} epochs of batch {settings.batch_size}, on "
        f"{device_words(pick_device().type)}"
    )
    return settings


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` where myst-nb is installed (the book build); elsewhere (Colab) ``value`` is shown in place.

    A page pastes a glued value into its prose or a figure caption (``{glue:md}`name```, ``{glue:figure}``), so a
    number or a provenance line in the text is computed by the page, never typed.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab installs stainlib without the book's tools
        from IPython.display import display as show

        show(value)
        return
    myst_glue(name, value, display=display)


def below_chance(aurocs: dict) -> str:
    """The sentence a page prints under its AUROCs: which of ``aurocs`` (label -> AUROC) lie below 0.5, and what that
    means; an empty string when none does.  Below chance, a score ranks good images (or pixels) above defective ones
    more often than not: it is not merely weak, it points the wrong way.
    """
    low = {label: float(value) for label, value in aurocs.items() if float(value) < 0.5}
    if not low:
        return ""
    parts = [f"{label} ({value:.3f})" for label, value in low.items()]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    subject = "is" if len(low) == 1 else "are"
    which = "that score ranks" if len(low) == 1 else "each of these scores ranks"
    pixels = " (good pixels, for a pixel AUROC)" if any("pixel" in label for label in low) else ""
    return (
        f"Below chance: {listed} {subject} under 0.5, so {which} good images{pixels} above defective ones more often "
        "than not."
    )


def _listed(parts: list) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def below_chance_by_map(overall: dict, per_defect: dict) -> str:
    """One sentence for a page that shows each map's AUROCs over the test split and per defect type: which maps lie
    below 0.5, where, and what that means (said once); an empty string when none does.

    ``overall`` is map -> (image AUROC, pixel AUROC); ``per_defect`` is map -> {defect type: image AUROC}.
    """
    clauses, pixels = [], False
    for name in overall:
        image, pixel = (float(v) for v in overall[name])
        where = [f"over all images (image AUROC {image:.3f})"] if image < 0.5 else []
        if pixel < 0.5:
            where.append(f"over all pixels (pixel AUROC {pixel:.3f})")
            pixels = True
        types = per_defect.get(name, {})
        low = {d: float(v) for d, v in types.items() if float(v) < 0.5}
        listed = [f"`{d}` ({v:.3f})" for d, v in low.items()]
        if len(low) == len(types) > 1:
            where.append("on every defect type: " + _listed(listed))
        elif low:
            where.append(f"on the defect type{'s' if len(low) > 1 else ''} " + _listed(listed))
        if where:
            clauses.append(f"the {name} map, " + _listed(where))
    if not clauses:
        return ""
    whom = "good images (good pixels, for a pixel AUROC)" if pixels else "good images"
    return (
        f"Below chance (under 0.5): {'; '.join(clauses)}. A score below chance is not merely weak, it points the wrong "
        f"way: it ranks {whom} above defective ones more often than not."
    )


def _committed(run, metrics: dict) -> dict:
    """The batch, the data in words and the device of a committed run: the device its ``config.json`` names, else
    the one its evaluation recorded (as :func:`stainlib.describe.run_where` reads it)."""
    config = read_config(run)
    s = stored_settings(config)
    device = config["train"].get("device", "auto")
    if device == "auto":
        device = metrics.get("residual", {}).get("device", "")
    kind = "synthetic" if is_synthetic_category(s["category"]) else "MVTec AD"
    return {
        "batch": s["batch_size"],
        "data": f"{kind} `{s['category']}`, {s['image_size']} px",
        "device": device_words(device) if device else "",
    }


def book_budgets(settings: BookSettings, results=None) -> dict:
    """The training budgets the book sets side by side, each computed: this page's run, the committed grid of real
    bottle runs (``results/bottle``), the budget study (``results/bottle/budget``, its snapshots) and the authors'.

    Returns ``{key: row}`` for the keys ``"page"``, ``"grid"``, ``"study"`` (where committed) and ``"paper"``; a row
    has ``steps`` and ``images_seen`` (pairs ``(first, last)`` for the study's snapshots, else one number),
    ``batch``, ``share`` (images seen over the authors', the last snapshot's for the study), ``data``, ``device``
    and ``budget`` (:func:`stainlib.epochs.budget`'s dict or the run's recorded one, the study's whole run).
    """
    results = Path(results) if results is not None else project_dir() / "results"
    bottle = results / "bottle"
    grid = sorted(p for p in bottle.glob("*-s[0-9]") if (p / "config.json").exists())
    # The authors' steps and images do not depend on the training split's size (their epochs are 2,000 samples).
    paper = paper_budget(read_config(grid[0])["budget"]["n_train"] if grid else None)
    rows = {}
    n_page = len(MVTecAD(settings.data_root, settings.category, "train", size=settings.image_size))
    b = budget(n_page, 0, settings.epochs, settings.batch_size)
    rows["page"] = {
        "budget": b,
        "steps": b["steps"],
        "images_seen": b["images_seen"],
        "batch": settings.batch_size,
        "data": settings.data_words(),
        "device": device_words(pick_device().type),
    }
    if grid:
        config = read_config(grid[0])
        b = config["budget"]
        others = {read_config(p)["budget"]["steps"] for p in grid}
        if others != {b["steps"]}:
            raise ValueError(f"the committed grid's runs have different budgets: {sorted(others)} steps")
        rows["grid"] = {
            "budget": b,
            "steps": b["steps"],
            "images_seen": b["images_seen"],
            **_committed(grid[0], read_metrics(grid[0])),
            "runs": len(grid),
        }
    study = [p for p in sorted((bottle / "budget").glob("*-s[0-9]")) if (p / "config.json").exists()]
    if study:
        config = read_config(study[0])
        b = config["budget"]
        snapshots = read_step_metrics(study[0])
        steps = sorted(snapshots) or [b["steps"]]
        per_step = b["samples_per_epoch"] / b["steps_per_epoch"]  # images per step, as budget() counts them
        rows["study"] = {
            "budget": b,
            "steps": (steps[0], steps[-1]),
            "images_seen": (round(steps[0] * per_step), round(steps[-1] * per_step)),
            **_committed(study[0], snapshots[steps[-1]] if snapshots else {}),
            "runs": len(study),
        }
    rows["paper"] = {
        "budget": paper,
        "steps": paper["steps"],
        "images_seen": paper["images_seen"],
        "batch": defaults()["batch_size"],  # the authors' code's, the library's default
        "data": "MVTec AD, each category",
        "device": "a GPU",
    }
    for row in rows.values():
        seen = row["images_seen"]
        row["share"] = (seen[-1] if isinstance(seen, tuple) else seen) / paper["images_seen"]
    return rows
