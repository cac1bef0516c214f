"""Serve one provider emulator in its own process (for benchmarks).

    python -m tests.emulators postmark [--key KEY] [--domain D] [--port 0] [--keep]

Prints the base URL on the first line of stdout, then serves until stdin closes.
GET /_emulator/stats gives counters; POST /_emulator/reset clears them.
"""

from __future__ import annotations

import argparse
import sys

from tests.emulators import EMULATORS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators")
    parser.add_argument("provider", choices=sorted(EMULATORS))
    parser.add_argument("--key", default="bench-key")
    parser.add_argument("--domain", default="mg.example.test")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep full messages in memory")
    args = parser.parse_args()
    options = {"domain": args.domain} if args.provider == "mailgun" else {}
    emulator = EMULATORS[args.provider](args.key, keep_messages=args.keep, **options)
    emulator.start(args.port)
    print(emulator.url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    emulator.stop()


if __name__ == "__main__":
    main()
