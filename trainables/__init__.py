"""What one trial runs: datasets, models, the training loop and its Ray wrappers.

Importing this package never imports Ray; the Ray Tune / Ray Train wrappers live in
``trainables.tune`` and are imported only by ``search``.
"""
from trainables.errors import WeakdisError

__all__ = ["WeakdisError"]
