"""What every layer reads: the error type, the model and metric registries, seeds and value coercion.

This package is a leaf: it imports only the standard library (never torch, Ray, numpy or pandas), so
``analysis``, ``search`` and ``trainables`` can all import it without importing each other.
"""
