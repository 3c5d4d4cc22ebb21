"""`provenance-api` and `python -m provenance_api`: the operator's command line.

Only the standard library is imported before `main` runs, so that a machine installed
without the server extra hears which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys

# The top-level modules that only `pip install 'provenance[server]'` brings.
SERVER_MODULES = frozenset(
    {"flask", "werkzeug", "web3", "eth_tester", "eth", "sqlmodel", "sqlalchemy", "alembic"}
)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `provenance-api` console script."""
    try:
        from provenance_api.cli import main as cli_main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SERVER_MODULES:
            raise
        print(
            f"Error: provenance-api needs the server extra (no module named {missing!r}); "
            "install it with: pip install 'provenance[server]'",
            file=sys.stderr,
        )
        sys.exit(1)
    cli_main(argv)


if __name__ == "__main__":
    main()
