"""stainlib: reconstruction-based anomaly detection with autoencoders trained on Stain-corrupted images.

One module per job, each explained by a chapter of the book (numbered as the site numbers them): ``data``,
``synthetic``, ``synthetic_images``, ``download`` (ch. 1), ``corruption``, ``stain``, ``noise`` and
``corruption_figures`` (ch. 2), ``models`` (ch. 3), ``diagrams`` (the introduction and ch. 3), ``spec``, ``train``,
``epochs``, ``runstate``, ``precision``, ``costs``, ``checkpoints``, ``checksums``, ``files``, ``runs`` (ch. 4),
``detect`` and ``metrics`` (ch. 5), ``paper``, ``sweep`` and ``tables`` (ch. 6-7), ``claims``, ``collect``,
``threshold``, ``predict`` and ``predictions`` (ch. 8), ``plotting``, ``describe``, ``evidence``, ``widgets`` and
``book`` (every chapter), ``cli`` (the command line, ch. 6-7). Importing the package has no side effects:
``stainlib.predict(run, images)`` (:func:`stainlib.predict.predict`; the module is callable) imports its module on first
use.

The modules form three layers, and each imports only from its own layer or a lower one (tests/test_layers.py):
the core (data, corruptions, networks, training, detection, metrics, the statistics of a claim, their files and
figures), the experiment (``paper``, ``runs``, ``describe``, ``collect``, ``predict``, ``sweep``) and the
presentation (``evidence``, ``tables``, ``book``, ``widgets``, ``diagrams``), with ``cli`` on top.
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "predict":  # imported on first use: the package itself imports nothing
        import importlib

        return importlib.import_module(".predict", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
