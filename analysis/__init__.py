"""Metrics, results as DataFrames, Pareto frontiers, plots, tables and reports.

Importing this package is cheap: matplotlib, torch and the training code are imported only inside
the functions that draw figures or load checkpoints; `search` is never imported.
"""
from analysis.pareto import aggregate_seeds, hypervolume, non_dominated_mask, pareto_front, seed_aggregated_front
from analysis.plots import (MissingDataError, clustering_vs_alpha, image_grid_figure, prior_means_figure,
                            progress_figure, reconstruction_figure, relation_accuracy_vs_depth, relation_figure,
                            save_figure, score_vs_beta, tradeoff_grid)
from analysis.report import AnalysisOutput, analyze, frontier, hypervolumes
from analysis.results import collect_results, load_history, load_results, write_results
from analysis.udr import udr
from analysis.tables import (clustering_table, disentanglement_table, paper_tables, relations_by_depth_table,
                             relations_by_version_table, to_latex, to_markdown, write_tables)

__all__ = [
    # results
    "collect_results", "load_history", "load_results", "write_results",
    # Pareto fronts and seeds
    "aggregate_seeds", "hypervolume", "non_dominated_mask", "pareto_front", "seed_aggregated_front",
    # figures
    "MissingDataError", "clustering_vs_alpha", "image_grid_figure", "prior_means_figure", "progress_figure",
    "reconstruction_figure", "relation_accuracy_vs_depth", "relation_figure", "save_figure", "score_vs_beta",
    "tradeoff_grid",
    # tables
    "clustering_table", "disentanglement_table", "paper_tables", "relations_by_depth_table",
    "relations_by_version_table", "to_latex", "to_markdown", "write_tables",
    # report
    "AnalysisOutput", "analyze", "frontier", "hypervolumes",
    # unsupervised model selection
    "udr",
]
