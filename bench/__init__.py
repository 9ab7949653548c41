"""The benchmark harness: a fake upstream, Switchboard on its production path, and a load generator between them.

``python -m bench.run`` measures (``make bench``), ``python -m bench.soak`` checks for leaks (``make bench-soak``),
``python -m bench.loadtest`` runs a mixed load and balances the usage books (``make loadtest``),
``python -m bench.readme`` copies the latest table into the README. Nothing here is imported by the application.
"""
