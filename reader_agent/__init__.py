"""The dock-door daemon: reads tags, signs custody handoffs, uploads them."""
