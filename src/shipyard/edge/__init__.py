"""Edge MLOps: models exported for device classes under their budgets (size, latency,
accuracy), signed bundles, staged rollouts by device group, and devices' telemetry.

The device side is :mod:`shipyard_edge`, a package of its own that never imports this one.
"""
