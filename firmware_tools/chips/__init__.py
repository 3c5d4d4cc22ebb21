"""The chips: NTAG 21x, NTAG 424 DNA and NXP's originality signatures with their curves."""
