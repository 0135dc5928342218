"""The members' web app (``tunetrust serve``): see docs/web.md and ``web/app.py``."""
