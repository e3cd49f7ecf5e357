"""The ways in: the CLI, the console, the pytest plugin and the Hypothesis strategies.

Kept empty: pytest imports the plugin in every session, so this package imports nothing.
"""
