"""coursekit: reference implementations for a course on convolutional networks.

The numpy core (``coursekit.layers``, ``coursekit.gradcheck``, ``coursekit.arith``)
imports nothing but numpy; the torch side is imported only when asked for.
"""

__version__ = "0.1.0"
