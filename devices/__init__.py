"""Async device drivers and the small runtime pieces they share (clock, backoff)."""
