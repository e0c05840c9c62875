"""Quality gates: the checks a model version must pass before promotion, and their report."""
