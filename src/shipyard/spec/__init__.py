"""Infrastructure as code: a declarative project spec (``shipyard.yaml``), its plan, apply,
export and configuration-drift detection."""
