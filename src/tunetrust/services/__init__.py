"""Use cases above the cooperative and the release engine, for the CLI and the web app."""
