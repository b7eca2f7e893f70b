"""Faces: detection, insightface pack lookup, provider choice and caching, face crops."""
