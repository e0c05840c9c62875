"""``shipyard demo``: the lifecycle on a synthetic card-fraud data set."""
