"""Tasks: a family of data with its evaluation and figures (toy 2-D data, MNIST), each a module whose
`train_and_evaluate(config, members, out, options, ...)` runs an experiment end to end."""
