"""Metrics, results as DataFrames, Pareto frontiers, plots, tables and reports.

Importing this package is cheap: matplotlib, torch and the training code are imported only inside
the functions that draw figures or load checkpoints.
"""
from analysis.pareto import aggregate_seeds, hypervolume, pareto_front, seed_aggregated_front
from analysis.results import collect_results, load_history, load_results, write_results

__all__ = [
    "aggregate_seeds", "collect_results", "hypervolume", "load_history", "load_results", "pareto_front",
    "seed_aggregated_front", "write_results",
]
