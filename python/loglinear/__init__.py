"""Log-linear attention (Guo et al. 2025) with adaptive memory decay: the C++ reference forms, their
handwritten backward passes and the CUDA backend, over NumPy arrays.

Everything of the compiled extension (``loglinear._loglinear``) is re-exported here, so
``loglinear.forward`` is the extension's ``forward``; ``help(loglinear)`` shows its argument rules.
The PyTorch op is the submodule ``loglinear.torch`` (imported on demand: it needs torch).
"""
from ._loglinear import *  # noqa: F401,F403  (the extension's functions and classes)
from ._loglinear import __doc__ as _extension_doc

__doc__ = (__doc__ or "") + "\n" + (_extension_doc or "")
