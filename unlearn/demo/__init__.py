"""The embedded demo: an invented story world and small models trained on it."""
