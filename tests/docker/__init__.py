"""Tests of docker."""
