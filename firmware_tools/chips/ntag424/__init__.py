"""NTAG 424 DNA: SUN, EV2 secure messaging, AN10922 key diversification, personalization."""
