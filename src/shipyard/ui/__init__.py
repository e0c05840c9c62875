"""The web UI, served by ``shipyard server`` at ``/`` and by ``shipyard ui`` on 127.0.0.1."""
