"""Tests of the gateway features, one folder per feature."""
