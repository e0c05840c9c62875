"""Pipelines as code: @step and @pipeline build a DAG; runs are cached, tracked and traced."""
