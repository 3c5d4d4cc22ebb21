"""The buyer's page: what a phone shows after a tap or a scan, server-rendered HTML.

`views` renders a verification (services/verification.py) for the resolver route;
`page` turns it into what the page shows; `strings` holds every sentence for translation;
`templates/` and `static/` are the page and its own assets (nothing from other sites).
"""
