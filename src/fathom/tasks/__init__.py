"""Learning tasks: what a model's outputs are trained and evaluated on."""
