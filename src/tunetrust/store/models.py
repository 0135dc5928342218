"""Metadata tables (SQLAlchemy 2). The member⇄pseudonym link lives only here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of every metadata table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Member(Base):
    """A person in the cooperative."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    keep_incognito: Mapped[bool] = mapped_column(Boolean, default=False)
    # the one current Parquet file of the member's events partition (see store/events.py)
    events_file: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Contribution(Base):
    """The result of importing one export for one member."""

    __tablename__ = "contributions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(40))
    export_digest: Mapped[str] = mapped_column(String(64), index=True)
    account_hashes: Mapped[list[Any]] = mapped_column(JSON)
    listens_added: Mapped[int] = mapped_column(Integer)
    duplicates_skipped: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class Secret(Base):
    """A cooperative secret, wrapped (AES-GCM) by the master key."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
