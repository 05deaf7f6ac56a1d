"""Loaders for real dataset formats; importing this package registers them."""
