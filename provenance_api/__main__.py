"""`python -m provenance_api` runs the `provenance-api` command line."""

from provenance_api.cli import main

main()
