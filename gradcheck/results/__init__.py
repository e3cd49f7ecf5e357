"""Results and their renderings: one check (:mod:`~gradcheck.results.result`), a session of
checks (:mod:`~gradcheck.results.session_report`)."""
