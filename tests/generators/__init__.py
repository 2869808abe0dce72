"""Tests of generators."""
