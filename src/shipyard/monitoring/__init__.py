"""Production monitoring: delayed labels (feedback), monitors over prediction-log windows."""
