"""The error type that the command line turns into a one-line message.

It lives in the leaf package ``weakdis.errors`` (so that ``analysis`` can raise it without importing
torch); this is the same class, importable under its older name.
"""
from weakdis.errors import WeakdisError

__all__ = ["WeakdisError"]
