"""A fixed pseudonym key for tests (random hex, used nowhere else)."""

TEST_KEY = "0f4c2a9e7b1d3f5a8c6e0b2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a"
