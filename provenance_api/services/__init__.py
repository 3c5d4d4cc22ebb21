"""Use cases as plain functions over a database session and small ports."""
