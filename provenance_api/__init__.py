"""The HTTP service: index, chain writer, buyer pages and operator CLI."""
