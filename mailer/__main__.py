"""`python -m mailer` runs the CLI (used by tests that start real subprocesses)."""

from mailer.cli import main

main()
