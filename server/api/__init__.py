"""The HTTP API: shared dependencies (`deps`) and one route module per resource (`routes`)."""
