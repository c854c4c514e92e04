"""Real MVTec AD bottle scored as new images by ``stainlib.predict``, for chapter 8, "Beyond the paper" (section
"Your own images"); writes ``results/bottle/predict/``.

The committed bottle runs keep their ``SHA256SUMS`` but not their checkpoints, and a decision needs the weights. So
this trains AESc + Stain again with the settings of ``results/bottle/aesc-stain-s0`` (gray, the paper's decoder, 20
one-pass epochs in batches of 16, seed 0) but at ``--image-size`` 128 px by default, a quarter of the 256 px run's
pixels and CPU time (``--image-size 256`` is the committed run's setting), into ``OUT/bottle/aesc-stain-s0``
(resumed or reused when it is there).  It evaluates its residual map, which calibrates the thresholds at a
false-positive rate of 0.01 on its clean validation images and keeps them in ``threshold.json``; then it predicts on
the test images read as new files and writes, beside the run: ``predict.json`` (the decisions against the truth,
with provenance), ``predictions.csv`` and ``summary.txt`` (as ``stainlib predict`` writes them, less the CSV's
heatmap column: the 83 heatmaps are not kept), and ``heatmaps.png`` (four of them).  The checkpoints stay
git-ignored.

    python tools/bottle_predict.py DATA_ROOT [--out results/bottle/predict] [--image-size 128] [--device auto]

DATA_ROOT holds ``bottle/`` in the MVTec AD layout (CC BY-NC-SA 4.0, MVTec Software GmbH; not part of the project).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {"epochs": 20, "batch_size": 16, "seed": 0, "decoder": "paper"}  # results/bottle/aesc-stain-s0's
MAP, FPR = "residual", 0.01


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_root")
    p.add_argument("--out", default=str(ROOT / "results" / "bottle" / "predict"))
    p.add_argument("--image-size", type=int, default=128, help="256: the committed run's size (4 times the CPU)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import torch

    from stainlib.describe import budget_text
    from stainlib.metrics import at_threshold
    from stainlib.predict import predict
    from stainlib.predictions import showcase_figure, write_predictions
    from stainlib.runs import evaluate, read_config, read_metrics, train
    from stainlib.spec import RunSpec

    out = Path(args.out).resolve()
    data = Path(args.data_root).resolve()
    settings = {**SETTINGS, "image_size": args.image_size}
    spec = RunSpec(data_root=str(data), category="bottle", model="aesc", corruption="stain", **settings)
    run = train(spec, out, device=args.device, progress=False)
    result = evaluate(run, MAP, device=args.device, figure=False, fpr=FPR)
    os.chdir(data)  # the files are named below the data root (bottle/test/...), with no machine path
    found = predict(run, "bottle/test", MAP, fpr=FPR, device=args.device)
    truth = torch.tensor([Path(f).parent.name != "good" for f in found["path"]])
    decided = at_threshold(found["pred_score"], truth, found["image_threshold"])
    calibrated = result["calibrated"]
    assert found["image_threshold"] == calibrated["image_threshold"] and decided["f1"] == calibrated["image_f1"]

    with tempfile.TemporaryDirectory() as tmp:
        write_predictions(found, tmp)
        summary = (Path(tmp) / "summary.txt").read_text().replace(str(run), str(run.relative_to(ROOT)))
        (out / "summary.txt").write_text(summary)
        with open(Path(tmp) / "predictions.csv", newline="") as f:  # without the heatmaps, which are not kept
            rows = [{k: v for k, v in row.items() if k != "heatmap"} for row in csv.DictReader(f)]
        with open(out / "predictions.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        fig = showcase_figure(found, truth, "real MVTec AD bottle")
        fig.savefig(out / "heatmaps.png", dpi=100)

    budget = read_config(run)["budget"]
    committed = read_metrics(ROOT / "results" / "bottle" / "aesc-stain-s0")[MAP]["image_auroc"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    report = {
        "run": str(run.relative_to(ROOT / "results" / "bottle")),
        "run_words": (
            f"AESc + Stain trained for this section with the settings of the committed aesc-stain-s0 but at "
            f"{args.image_size} px ({args.image_size} px gray, decoder `{SETTINGS['decoder']}`, "
            f"{budget_text(budget, SETTINGS['batch_size'])}, seed 0), residual map: image AUROC "
            f"{result['image_auroc']:.3f} (the committed 256 px run's: {committed:.3f})"
        ),
        "map": MAP,
        "fpr": FPR,
        "n_val": calibrated["n_val"],
        "image_threshold": calibrated["image_threshold"],
        "pixel_threshold": calibrated["pixel_threshold"],
        "how": calibrated["how"],
        "n_images": len(truth),
        "counts": {k: decided[k] for k in ("tp", "fp", "fn", "tn")},
        "precision": decided["precision"],
        "recall": decided["recall"],
        "f1": decided["f1"],
        "f1_max": result["image_f1_max"],
        "image_auroc": result["image_auroc"],
        "pixel_precision": calibrated["pixel_precision"],
        "pixel_recall": calibrated["pixel_recall"],
        "provenance": f"Made by tools/bottle_predict.py on {result['device']} on {datetime.date.today().isoformat()}.",
        "commit": commit.stdout.strip() or "unknown",  # for the record, not for the page
    }
    (out / "predict.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
