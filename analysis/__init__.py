"""Metrics, results as DataFrames, Pareto frontiers, plots, tables and reports."""
