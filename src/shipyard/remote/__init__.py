"""REST adapters: the capabilities' ports implemented over HTTP to a Shipyard server."""
