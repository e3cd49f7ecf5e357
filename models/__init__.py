"""Hand-written NumPy backpropagation of full networks (installed as ``gradcheck.models``)."""
