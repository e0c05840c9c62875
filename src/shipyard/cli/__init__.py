"""The ``shipyard`` command line (Typer + Rich): a thin layer over the services."""
