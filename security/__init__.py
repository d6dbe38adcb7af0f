"""Crypto suites, key store, PIN blocks, envelopes, TLS contexts, audit chain, redaction."""
