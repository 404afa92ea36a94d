"""The engine: members, the compiled sweep, the run loop, checkpoints, the run directory, logs, devices."""
