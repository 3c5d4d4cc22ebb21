"""JSON blueprints, one per resource, and the one error handler."""
