"""What one trial runs: datasets, models, the training loop and its Ray wrappers.

Importing this package never imports Ray; the Ray Tune / Ray Train wrappers live in
``trainables.tune`` and are imported only by ``search``.
"""
from trainables.config import TrialConfig
from trainables.errors import WeakdisError
from trainables.evaluation import evaluate
from trainables.loop import TrialResult, load_trial, train

__all__ = ["TrialConfig", "TrialResult", "WeakdisError", "evaluate", "load_trial", "train"]
