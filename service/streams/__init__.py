"""Tick sources: each decodes and validates its input and puts ticks into the pipeline's queue."""
