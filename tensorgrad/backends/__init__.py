"""``tg.backends``: switches of the libraries under the engine, with PyTorch's names."""

from . import cuda

__all__ = ["cuda"]
