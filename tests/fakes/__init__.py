"""Test doubles that speak the real protocols from the other side."""
