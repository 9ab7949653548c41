"""``python -m tests.fakes.upstream``: serve a fake upstream on loopback and print its base URL."""

from tests.fakes.upstream.cli import main

main()
