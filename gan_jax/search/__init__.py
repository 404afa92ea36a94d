"""Search over members' hyperparameters inside one program: population-based training, successive halving."""
