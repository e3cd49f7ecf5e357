"""Adapters: each turns code of one shape (a scalar function, an array function, a layer,
a model) into the engine's one problem type and runs it."""
