"""The core: static config and traced hyperparameters, the GAN's pure state and updates, the loop."""
