"""The village terminal."""
