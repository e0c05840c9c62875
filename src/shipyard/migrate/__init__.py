"""Bringing other tools' data into Shipyard: ``shipyard import mlflow``."""
