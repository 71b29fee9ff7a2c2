"""Privacy controls beyond pseudonyms: disclosure control, re-identification risk, key rotation."""
