"""Components a GAN is built from: models, losses, penalties, augmentation, optimizers."""
