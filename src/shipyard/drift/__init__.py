"""Distribution drift between a reference and a current sample (gates and monitoring)."""
