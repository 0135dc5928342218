"""Upgrading to 0.5 (migration 0012): a buyer's token from an earlier version keeps
working as a buyer token, valid a year, and nothing else of the buyer changes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import inspect, select, text
from starlette.testclient import TestClient

from tunetrust import Settings, open_home
from tunetrust.coop import governance, tokens
from tunetrust.store import db
from tunetrust.store.home import init_home
from tunetrust.store.models import Buyer, DataRequest
from tunetrust.web.app import create_app


def test_an_earlier_buyer_token_becomes_a_scoped_token_that_expires(
    tmp_path: Path, db_url: str | None
) -> None:
    home = init_home(Settings(home=tmp_path / "home", database_url=db_url))
    governance.add_buyer(home, "Acme Research", "data@acme.invalid", "SE")
    cfg = db._alembic_config(home.engine)
    cfg.attributes["master_key"] = lambda: home.master_key
    command.downgrade(cfg, "0011")  # as 0.4 left it: the buyer's token hash on its row
    assert "api_tokens" not in inspect(home.engine).get_table_names()
    old = secrets.token_urlsafe(32)  # 0.4's tokens had no prefix
    with home.engine.begin() as conn:
        conn.execute(
            text("UPDATE buyers SET token_sha256 = :d"),
            {"d": hashlib.sha256(old.encode()).hexdigest()},
        )
    settings = home.settings
    home.close()

    home = open_home(settings)  # migrates to 0012 on open
    try:
        with home.sessions() as s:
            found = tokens.authenticate(s, old)
            buyer = s.scalar(select(Buyer))
            assert buyer is not None and buyer.name == "Acme Research"
            assert buyer.token_sha256 == ""  # the digest moved to api_tokens
            assert s.scalar(select(DataRequest)) is None
        assert found is not None and found.kind == "buyer" and found.buyer_id == buyer.id
        assert set(found.scopes) == set(tokens.SCOPES["buyer"])
        left = found.expires_at - datetime.now(UTC)
        assert timedelta(days=364) < left <= timedelta(days=365)
        # and the API takes it
        app = create_app(settings, worker=False, home=home)
        with TestClient(app, base_url="https://localhost") as client:
            me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "buyer" and me.json()["name"] == "Acme Research"
        assert me.json()["token"] == found.id
    finally:
        home.close()
