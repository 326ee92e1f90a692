"""Tests for the engine: loading, lending and running pipelines."""
