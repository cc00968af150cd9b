"""Sweeps: config schema, search spaces, Optuna searchers inside Ray Tune, the command line."""
