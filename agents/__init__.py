"""Agents, rollouts, diversity metrics and training."""
