"""Blob adapters: content-addressed storage in a local folder or any fsspec filesystem."""
