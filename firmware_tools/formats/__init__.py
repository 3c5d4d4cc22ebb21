"""Tag formats: GS1 Digital Link URLs, NDEF images and signed QR labels (pure codecs)."""
