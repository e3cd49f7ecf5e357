"""The zoo's verification: every built-in activation, loss, layer and network, three ways."""
