"""Exact derivatives with SymPy and derivation reports (installed as ``gradcheck.reference``)."""
