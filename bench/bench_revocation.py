"""Cost of the per-request revocation check: the token alone vs the token and its login (family).

Runs the hot read routes' profile statement (``services.profile_context``), which
carries the revocation check, against a database holding 20,000 revocation rows:
once as it was (the token's ``jti`` only) and once as it is (``jti`` and the
family's marker), interleaved, and prints the CPU time per statement (median and
best of the rounds). CPU time, not wall time: on a shared machine wall time
measures the neighbours.

    python bench/bench_revocation.py                                  # SQLite in a temporary folder
    python bench/bench_revocation.py --url postgresql+psycopg://user@host/db --schema bench_rev
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, exists, select, text

from catalog_api.db.engine import make_engine, migrate
from catalog_api.db.tables import AccountRow, ProfileRow, RevokedTokenRow
from catalog_api.services.profile_context import _PROFILE as TOKEN_AND_LOGIN

TOKEN_ONLY = (
    select(
        ProfileRow.profile_id, ProfileRow.account_id, ProfileRow.name, ProfileRow.language, ProfileRow.maturity_level,
        ProfileRow.is_kids, ProfileRow.country, AccountRow.plan,
        exists().where(RevokedTokenRow.jti == bindparam("jti")).label("revoked"),
    )
    .join(AccountRow, AccountRow.account_id == ProfileRow.account_id)
    .where(ProfileRow.profile_id == bindparam("profile_id"), ProfileRow.account_id == bindparam("account_id"))
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None, help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema to create and drop")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--statements", type=int, default=2000, help="statements per round and variant")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='marquee-rev-')) / 'rev.db'}"
    if args.schema:
        with make_engine(url).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"'))
    engine = make_engine(url, schema=args.schema)
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(AccountRow.__table__.insert(), [{
            "account_id": "a1", "email": "rev@example.com", "password_hash": "-", "country": "US", "plan": "basic",
            "is_admin": False, "created_at": now,
        }])  # fmt: skip
        connection.execute(ProfileRow.__table__.insert(), [{
            "profile_id": "p1", "account_id": "a1", "name": "P", "language": "en", "maturity_level": 3,
            "is_kids": False, "country": "US", "created_at": now,
        }])  # fmt: skip
        connection.execute(RevokedTokenRow.__table__.insert(), [
            {"jti": uuid.uuid4().hex if i % 2 else f"fam:{uuid.uuid4().hex}", "account_id": "a1",
             "expires_at": now + timedelta(days=1)} for i in range(20_000)
        ])  # fmt: skip
    token_only = {"profile_id": "p1", "account_id": "a1", "jti": uuid.uuid4().hex}
    variants = {
        "token only (before)": (TOKEN_ONLY, token_only),
        "token and login (now)": (TOKEN_AND_LOGIN, {**token_only, "family": f"fam:{uuid.uuid4().hex}"}),
    }
    per_statement: dict[str, list[float]] = {name: [] for name in variants}
    with engine.connect() as connection:
        for _ in range(args.rounds):
            for name, (statement, params) in variants.items():
                for _ in range(200):
                    connection.execute(statement, params).first()
                started = time.process_time()
                for _ in range(args.statements):
                    connection.execute(statement, params).first()
                per_statement[name].append((time.process_time() - started) / args.statements * 1e6)
    for name, samples in per_statement.items():
        print(f"{engine.dialect.name} {name}: median {statistics.median(samples):.1f} us, "
              f"best {min(samples):.1f} us CPU per statement")  # fmt: skip
    if args.schema:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{args.schema}" CASCADE'))


if __name__ == "__main__":
    main()
