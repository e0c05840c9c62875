"""The MLflow-style Python SDK: fluent run tracking over whichever backend SHIPYARD_URI picks."""
