"""Analyses of training runs: where the learning signal concentrates (forksearch-analyze)."""
