"""Pre-render the figures of real MVTec AD that the book shows but cannot ship as data.

    python tools/make_figures.py MVTEC_ROOT

Writes book/figures/mvtec_bottle.png: a good test image of `bottle` and one image of each defect type, with masks.
MVTec AD is CC BY-NC-SA 4.0 (MVTec Software GmbH); the figure is attributed where the book shows it.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from stainlib.data import MVTecAD
from stainlib.plotting import dataset_grid


def main(root):
    test = MVTecAD(root, "bottle", "test", color="rgb")
    first = {}
    for i, (_, _, kind) in enumerate(test.samples):
        first.setdefault(kind, i)
    order = ["good"] + sorted(k for k in first if k != "good")
    fig = dataset_grid([test[first[k]] for k in order], title="MVTec AD bottle", scale=1.8)
    out = Path(__file__).resolve().parents[1] / "book" / "figures" / "mvtec_bottle.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=80)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1])
