"""Offline runs: recordings through the live pipeline's steps, and batch review."""
