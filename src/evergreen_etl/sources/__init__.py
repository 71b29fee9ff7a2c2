"""Streaming readers for the two sources: the users export and the NSPL postcode lookup."""
