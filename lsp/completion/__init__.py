"""Completions: prompt windows, scheduling, caching and post-processing of model output."""
