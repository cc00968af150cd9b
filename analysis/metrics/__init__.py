"""Disentanglement metrics as pure functions of arrays (disentanglement_lib definitions)."""
