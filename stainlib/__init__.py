"""stainlib: reconstruction-based anomaly detection with autoencoders trained on Stain-corrupted images.

One module per concept, each explained by a chapter of the book:
``noise`` (ch. 3), ``data`` (ch. 2), ``models`` (ch. 4), ``train`` (ch. 5), ``detect`` and ``metrics`` (ch. 6),
``plotting``, ``widgets`` (ch. 3), ``cli`` (ch. 7-8).  Importing the package has no side effects.
"""

__version__ = "0.1.0"
