"""What a run is: its data, network, corruption and training budget, as one frozen value (book chapter 4).

A :class:`RunSpec` names its run folder (:attr:`RunSpec.name`, the only place a run folder name is built) and the
settings written into the folder's ``config.json``.  Before a run folder is reused, loaded or resumed, the spec is
compared with what the folder stores (:meth:`RunSpec.differences`); a run made with other settings is never reused
silently.  The device is not part of a run's identity, and neither are the evaluation settings.

:data:`BUDGETS` names training budgets.  ``paper`` is the authors': an epoch of 2,000 training samples (125 steps of
16) with 500 validation samples, for 250 epochs, so 31,250 steps and 500,000 images seen.  The default budget, one
pass over the training split per epoch, is much smaller on MVTec AD (11 steps of 16 for bottle's 167 images).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from .models import DECODERS, MODELS
from .noise import CORRUPTIONS

__all__ = [
    "BUDGETS",
    "COLORS",
    "MAX_IMAGE_SIZE",
    "MAX_SEED",
    "RunSpec",
    "defaults",
    "integer",
    "paper_budget",
    "positive_number",
    "run_name",
    "setting",
    "stored_settings",
]

COLORS = ("gray", "rgb")
MAX_IMAGE_SIZE = 2048  # MVTec AD's images are at most 1024 px; far beyond, memory runs out before a step is done
MAX_SEED = 2**63 - 1  # what the seeded generators accept
VAL_FRACTION = 0.2


def integer(low: int, high: int | None = None, why: str = ""):
    """A parser of one setting's text: an integer from ``low`` to ``high``, else ``ValueError`` saying what was wrong.

    The command line turns its message into argparse's error, which names the flag (``argument --seed: must be from 0
    to ..., got -1``).

    Args:
        low, high: the bounds, inclusive (``high=None``: none).
        why: words added to the error message.

    Returns:
        The parser, ``text -> int``: ``integer(0, 9)("3") == 3``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}, got {value}{why}")
        return value

    return parse


def positive_number(text: str) -> float:
    """A parser of one setting's text: a positive, finite number (``inf`` and ``nan`` are refused).

    Example: ``positive_number("1e-3") == 0.001``; ``positive_number("0")`` raises ``ValueError``.
    """
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a positive, finite number, got {text}")
    return value


COUNT = integer(1)
SEED = integer(0, MAX_SEED)


def setting(default=dataclasses.MISSING, *, help: str, parse=None, choices=None, names=None, per_run=False):
    """A field of :class:`RunSpec` with what the command line needs to make its flag (``--image-size`` for
    ``image_size``).

    Args:
        default: the field's default (none: the flag is required).
        help: the flag's help.
        parse: the parser of the flag's text (:func:`integer`, :func:`positive_number`).
        choices: the accepted values (a mapping's keys, read when the flag is made).
        names: a registry whose keys the help lists but the spec checks (the corruptions: a chapter may register one
            before it calls the command line).
        per_run: set by a sweep for each run of its grid (category, model, corruption, seed), not shared.

    Returns:
        A ``dataclasses.field`` with these in its ``metadata``.
    """
    meta = {"help": help, "parse": parse, "choices": choices, "names": names, "per_run": per_run}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunSpec:
    """One training run.  ``data_root`` is resolved to an absolute path on creation.

    ``samples_per_epoch`` is the number of training images drawn per epoch; ``None`` is one pass over the training
    split.  ``decoder`` is the network's decoder reading (:data:`stainlib.models.DECODERS`: ``"paper"``, or
    ``"legacy"``, the reading of runs made before the decoder readings were named, recorded for configs without the
    key).  It does not enter the folder name: a folder of the other reading is refused by :meth:`differences`, never
    mixed.  The corruption's reading is in its name (``drops`` / ``drops-code``); the dropout reading is an evaluation
    setting, not here.  ``val_samples`` is the number of corrupted validation images the validation PSNR is measured
    on (drawn with repetition, seeded); ``None`` is each validation image once.  :meth:`with_budget` applies a named
    budget.

    Each field is a :func:`setting`: its default, help and parser are those of the command line's flag, and
    :class:`stainlib.train.TrainConfig` takes the training settings' defaults from here, so each default is written
    here only.
    """

    data_root: str = setting(help="the folder that holds the categories (MVTec AD layout)")
    category: str = setting(help="the category (a folder of DATA_ROOT)", per_run=True)
    model: str = setting("aesc", help="the network", choices=MODELS, per_run=True)
    corruption: str = setting("stain", help="the training corruption", names=CORRUPTIONS, per_run=True)
    image_size: int = setting(
        256,
        help="the side images are resized to, in px",
        parse=integer(1, MAX_IMAGE_SIZE, " (MVTec AD's images are at most 1024 px)"),
    )
    color: str = setting("gray", help="train on gray or rgb images", choices=COLORS)
    epochs: int = setting(250, help="training epochs", parse=COUNT)
    samples_per_epoch: int | None = setting(
        None, help="training images per epoch (default: one pass over the training split)", parse=COUNT
    )
    val_samples: int | None = setting(
        None, help="corrupted validation samples per PSNR (default: each validation image once)", parse=COUNT
    )
    seed: int = setting(
        0, help="seeds the split, the initial weights and every draw of the training", parse=SEED, per_run=True
    )
    lr: float = setting(1e-3, help="Adam's learning rate", parse=positive_number)
    batch_size: int = setting(16, help="images per optimiser step", parse=COUNT)
    decoder: str = setting(
        "paper",
        help="the decoder's reading: legacy is that of the runs made before the readings were named",
        choices=DECODERS,
    )

    def __post_init__(self):
        object.__setattr__(self, "data_root", str(Path(self.data_root).expanduser().resolve()))
        if not self.category or self.category in (".", "..") or "/" in self.category or "\\" in self.category:
            raise ValueError(f"category must be a folder name, got {self.category!r}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(MODELS)}")
        if self.corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {self.corruption!r}; known: {', '.join(CORRUPTIONS)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; known: {', '.join(DECODERS)}")
        if self.color not in COLORS:
            raise ValueError(f"color must be 'gray' or 'rgb', got {self.color!r}")
        for key in ("image_size", "epochs", "batch_size"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")
        if int(self.image_size) > MAX_IMAGE_SIZE:
            raise ValueError(
                f"image_size must be at most {MAX_IMAGE_SIZE} px, got {self.image_size} (MVTec AD's images are 700 to "
                "1024 px; the paper trains at 256)"
            )
        for key in ("samples_per_epoch", "val_samples"):
            if getattr(self, key) is not None and int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be at least 1 or None, got {getattr(self, key)}")
        if not (0 <= int(self.seed) <= MAX_SEED):
            raise ValueError(f"seed must be an integer from 0 to {MAX_SEED} (2**63 - 1), got {self.seed}")
        if not (math.isfinite(float(self.lr)) and float(self.lr) > 0):
            raise ValueError(f"lr must be a positive, finite number, got {self.lr}")

    @property
    def name(self) -> str:
        """The run folder's name: ``{model}-{corruption}-s{seed}``, with ``-rgb`` for colour runs."""
        return run_name(self.model, self.corruption, self.seed, self.color)

    def folder(self, out) -> Path:
        """The run folder under ``out``.

        Example: ``RunSpec(data_root="d", category="bottle").folder("runs") == Path("runs/bottle/aesc-stain-s0")``.
        """
        return Path(out) / self.category / self.name

    def replace(self, **changes) -> RunSpec:
        """A copy with ``changes`` applied, checked as a new spec.

        Example: ``spec.replace(seed=1).name == "aesc-stain-s1"`` for the default model and corruption.
        """
        return dataclasses.replace(self, **changes)

    def with_budget(self, name: str) -> RunSpec:
        """This spec with the epochs, samples per epoch and validation samples of the budget ``name``.

        Args:
            name: a key of :data:`BUDGETS` (``"paper"``: 250 epochs of 2,000 samples).

        Returns:
            The new spec.

        Raises:
            ValueError: the budget is unknown.
        """
        if name not in BUDGETS:
            raise ValueError(f"unknown budget {name!r}; known: {', '.join(BUDGETS)}")
        return self.replace(**BUDGETS[name])

    def to_dict(self) -> dict:
        """Every field by name: ``RunSpec(**spec.to_dict()) == spec``."""
        return dataclasses.asdict(self)

    def data_config(self) -> dict:
        """The ``data`` part of ``config.json``: enough to read the same splits again.

        Returns:
            ``{"data_root", "category", "image_size", "color", "val_fraction", "split_seed"}``.
        """
        return {
            "data_root": self.data_root,
            "category": self.category,
            "image_size": self.image_size,
            "color": self.color,
            "val_fraction": VAL_FRACTION,
            "split_seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> RunSpec:
        """The spec a run folder's ``config.json`` describes (the old layout too).

        Example: ``RunSpec.from_config(read_config(run)).folder(out) == run`` for a run trained under ``out``.
        """
        return cls(**stored_settings(config))

    def differences(self, stored: dict, extend: bool = True) -> list[str]:
        """The settings in which a run folder's ``config.json`` (``stored``) differs from this spec, one line each.

        With ``extend``, a spec with more epochs than the stored run is not a difference: it extends the run.

        Args:
            stored: a ``config.json``'s content.
            extend: allow more epochs than the stored run has.

        Returns:
            One line per differing setting, ``"seed: 0 in the run folder, 1 now"``; ``[]`` when they agree.
        """
        old = stored_settings(stored)
        diffs = []
        for key, now in self.to_dict().items():
            then = old.get(key)
            if key == "epochs" and extend and then is not None and now > then:
                continue
            if then != now:
                diffs.append(f"{key}: {then!r} in the run folder, {now!r} now")
        return diffs


def run_name(model: str, corruption: str, seed: int = 0, color: str = "gray") -> str:
    """The one place a run folder name is made (:attr:`RunSpec.name` uses it; the tables look runs up by it).

    Example: ``run_name("aesc", "stain", 2) == "aesc-stain-s2"``, ``run_name("ae", "drops", 0, "rgb") ==
    "ae-drops-s0-rgb"``.
    """
    return f"{model}-{corruption}-s{seed}" + ("-rgb" if color == "rgb" else "")


def stored_settings(config: dict) -> dict:
    """The settings of a ``config.json`` under the names of :class:`RunSpec`, as stored (roots are not resolved).

    Reads the layout before ``RunSpec`` too (``data.root`` and ``data.size``), as in the committed ``results/``, and
    gives ``decoder="legacy"`` to a config without the key (every run made before the decoder readings were named).

    Args:
        config: a ``config.json``'s content.

    Returns:
        ``{field: value}`` for the fields of :class:`RunSpec` (``None`` where the config has no value).
    """
    data, train = config.get("data", {}), config.get("train", {})
    return {
        "data_root": data.get("data_root", data.get("root")),
        "category": data.get("category"),
        "model": config.get("model", {}).get("name"),
        "corruption": config.get("corruption"),
        "image_size": data.get("image_size", data.get("size")),
        "color": data.get("color", "gray"),
        "epochs": train.get("epochs"),
        "samples_per_epoch": train.get("samples_per_epoch"),
        "val_samples": train.get("val_samples"),
        "seed": train.get("seed", 0),
        "lr": train.get("lr"),
        "batch_size": train.get("batch_size"),
        "decoder": config.get("model", {}).get("decoder", "legacy"),
    }


def defaults() -> dict:
    """The default of each :class:`RunSpec` field that has one, by name (the one place they are written).

    Example: ``defaults()["epochs"] == 250``.
    """
    return {f.name: f.default for f in dataclasses.fields(RunSpec) if f.default is not dataclasses.MISSING}


BUDGETS = {
    "paper": {"epochs": 250, "samples_per_epoch": 2000, "val_samples": 500},
    "pass": {key: defaults()[key] for key in ("epochs", "samples_per_epoch", "val_samples")},
}
"""Named training budgets: ``paper`` (the authors' code) and ``pass`` (one pass over the training split per epoch,
the defaults)."""


def paper_budget(n_train: int | None = None) -> dict:
    """The authors' budget (:data:`BUDGETS` ``paper``) counted as a run records it, in batches of the default size.

    Args:
        n_train: the training split its samples are drawn from (recorded only: the steps and images seen do not depend
            on it); ``None``: one epoch's samples.

    Returns:
        :func:`stainlib.epochs.budget`'s dict: 250 epochs of 2,000 samples, 31,250 steps of 16, 500,000 images seen,
        500 validation samples per epoch.
    """
    from .epochs import budget

    paper = BUDGETS["paper"]
    per_epoch, val = paper["samples_per_epoch"], paper["val_samples"]
    return budget(n_train or per_epoch, val, paper["epochs"], defaults()["batch_size"], per_epoch, val)
