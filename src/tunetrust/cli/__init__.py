"""The ``tunetrust`` command line. Each command parses, calls one core function, renders.

_app.py        the Typer apps, global options, output helpers, ``main()``
data.py        init, import, synth, demo, insights, contribution, doctor
members.py     member, consent, key, audit
releases.py    release, budget
governance.py  rules, buyer, request, vote, ledger
backup.py      backup, restore
web.py         invite, serve (the members' web app)
"""

from tunetrust.cli import backup, data, governance, members, releases, web
from tunetrust.cli._app import app, main

__all__ = ["app", "backup", "data", "governance", "main", "members", "releases", "web"]
