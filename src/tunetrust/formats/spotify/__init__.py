"""Spotify's "download your data" package: the parser (``parser``) and a synthetic
generator faithful to every file variant (``synth``), kept side by side so a new
variant changes both in one place."""

from tunetrust.formats.spotify.parser import FACTS, SERVICE, SERVICE_START, SpotifyParser

__all__ = ["FACTS", "SERVICE", "SERVICE_START", "SpotifyParser"]
