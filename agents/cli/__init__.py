"""Command-line entry points (the only place Hydra configs are read)."""
