"""SQLAlchemy tables. Only the store package touches them; everything above sees records."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EnvironmentRow(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_environment_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    arn: Mapped[str] = mapped_column(String(256), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)
    #: The configuration in force (MWAA member names), JSON.
    config: Mapped[str] = mapped_column(Text)
    #: While UPDATING: the configuration being left, to roll back to. JSON or NULL.
    previous_config: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The model's LastUpdate (Status, CreatedAt, Source, Error), JSON or NULL.
    last_update: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: While MAINTENANCE or UNAVAILABLE: the status it returns to once Airflow is healthy again.
    resume_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: While UNAVAILABLE after a failed update: that update's LastUpdate.Error (JSON), shown again
    #: on recovery (LastUpdate.Error tells why Airflow is not serving meanwhile).
    failed_update_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[str] = mapped_column(Text, default="{}")
    #: Generated per-environment secrets (JWT secret, Fernet key, ...), JSON. Never returned by the API.
    secrets: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_time", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[float] = mapped_column(Float)
    request_id: Mapped[str] = mapped_column(String(64))
    principal_arn: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    source_ip: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resource: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    deciding_statement: Mapped[str | None] = mapped_column(String(512), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: What went wrong inside the policy engine (a decision with errors denies), "; "-joined.
    policy_errors: Mapped[str | None] = mapped_column(Text, nullable=True)
