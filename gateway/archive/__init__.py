"""Archived images of window operations: stored by content, exported monthly, verified."""
