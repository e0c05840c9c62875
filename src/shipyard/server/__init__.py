"""HTTP surfaces: the platform REST API (and later the web UI and the model server)."""
