"""Capture: decorator/context manager, output hashing, environment probe, model identity."""
