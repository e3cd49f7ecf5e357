"""The engine: NumPy only. Targets, finite differences, fast mode, the Taylor test, the
precision table and the run of one problem (see docs/ARCHITECTURE.md)."""
