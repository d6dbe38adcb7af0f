"""Tests of the audit chain, its checkpoints and their anchoring off the box."""
