"""stainlib: reconstruction-based anomaly detection with autoencoders trained on Stain-corrupted images.

One module per job, each explained by a chapter of the book: ``data``, ``synthetic``, ``download`` (ch. 2),
``noise`` (ch. 3), ``models`` (ch. 4), ``diagrams`` (ch. 1 and 4), ``spec``, ``train``, ``files``, ``runs``
(ch. 5), ``detect`` and ``metrics`` (ch. 6), ``sweep`` and ``tables`` (ch. 7-8), ``plotting``, ``widgets`` and
``book`` (every chapter), ``cli`` (the command line, ch. 7-8).  Importing the package has no side effects.
"""

__version__ = "0.1.0"
