"""Physical tags: formats, tag cryptography, NFC transports and the provisioning CLI."""
