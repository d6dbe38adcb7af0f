"""The append-only audit chain, its signed daily checkpoints and its verification."""
