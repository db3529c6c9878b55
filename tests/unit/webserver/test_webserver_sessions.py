"""Sessions: a token resolves only while its session lives, only for its environment, never forged."""

from __future__ import annotations

import jwt

from openmwaa.webserver.sessions import WebSessionStore

ENV = "arn:aws:airflow:us-east-1:123456789012:environment/a"
OTHER = "arn:aws:airflow:us-east-1:123456789012:environment/b"


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_session_resolves_for_its_environment_until_it_ends() -> None:
    clock = Clock()
    store = WebSessionStore(b"s" * 32, ttl=100, clock=clock)
    session, token = store.start(environment_arn=ENV, identity="user/alice", role="User")
    assert store.resolve(token, environment_arn=ENV) == session
    assert store.resolve(token, environment_arn=OTHER) is None
    store.end(session.session_id)
    assert store.resolve(token, environment_arn=ENV) is None


def test_session_expires_with_its_ttl() -> None:
    clock = Clock()
    store = WebSessionStore(b"s" * 32, ttl=100, clock=clock)
    _, token = store.start(environment_arn=ENV, identity="user/alice", role="User")
    clock.now += 99
    assert store.resolve(token, environment_arn=ENV) is not None
    clock.now += 1
    assert store.resolve(token, environment_arn=ENV) is None


def test_forged_or_foreign_tokens_do_not_resolve() -> None:
    store = WebSessionStore(b"s" * 32)
    session, token = store.start(environment_arn=ENV, identity="user/alice", role="User")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert store.resolve(jwt.encode(claims, b"x" * 32, algorithm="HS256"), environment_arn=ENV) is None
    assert store.resolve(jwt.encode(claims, "", algorithm="none"), environment_arn=ENV) is None
    other_store = WebSessionStore(b"s" * 32)  # same key, but the session id lives elsewhere (a restart)
    assert other_store.resolve(token, environment_arn=ENV) is None
    assert session.session_id not in repr(session)


def test_store_is_bounded() -> None:
    clock = Clock()
    store = WebSessionStore(b"s" * 32, ttl=100, clock=clock, max_sessions=3)
    tokens = []
    for i in range(5):
        clock.now += 1
        tokens.append(store.start(environment_arn=ENV, identity=f"user/{i}", role="User")[1])
    live = [t for t in tokens if store.resolve(t, environment_arn=ENV) is not None]
    assert len(live) == 3 and live == tokens[2:]
