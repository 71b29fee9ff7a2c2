"""The warehouse schema as SQLAlchemy Core metadata: one definition for every backend.

Alembic migrations are written against this metadata, and ``alembic check`` proves they
match it. Dialect differences are limited to ``dialect.py``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    false,
    text,
)

UNKNOWN_AUTHORITY = "UNKNOWN"
UNKNOWN_AUTHORITY_NAME = "Unknown (no, invalid or unmatched postcode)"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

dim_local_authority = Table(
    "dim_local_authority",
    metadata,
    Column("code", String(16), primary_key=True, comment="ONS district code, or UNKNOWN"),
    Column("name", String(128), nullable=False),
    Column("region_code", String(16)),
    Column("region_name", String(128)),
    Column("country_code", String(16)),
    Column("country_name", String(64)),
    Column("current_code", String(16), comment="The authority that holds this area today"),
    Column("is_current", Boolean, nullable=False, server_default=text("true")),
    Column(
        "current_mapping",
        String(11),
        comment="exact or approximate: how current_code holds this area (NULL: it is current)",
    ),
    comment="Local authority districts, with an explicit unknown member",
)

dim_postcode = Table(
    "dim_postcode",
    metadata,
    Column("postcode", String(8), primary_key=True, comment="Canonical pcds form"),
    Column("outward", String(4), nullable=False, comment="Postcode district"),
    Column("local_authority_code", String(16), comment="NULL when the lookup has a pseudo-code"),
    Column("country_code", String(16)),
    Column("region_code", String(16)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("introduced", String(6), comment="YYYYMM"),
    Column("terminated", String(6), comment="YYYYMM, NULL while live"),
    comment="The ONS postcode lookup as loaded (NSPL)",
)

dim_postcode_district = Table(
    "dim_postcode_district",
    metadata,
    Column("outward", String(4), primary_key=True),
    Column(
        "local_authority_code",
        String(16),
        comment="Set only when every live postcode of the district lies in this authority",
    ),
    Column("live_postcodes", Integer, nullable=False),
    Column("authorities", Integer, nullable=False),
    comment="Where an outward code alone can be located",
)

dim_user = Table(
    "dim_user",
    metadata,
    Column("user_id", SurrogateKey, primary_key=True, autoincrement=True),
    Column("pseudonym", String(64), nullable=False, unique=True, comment="HMAC-SHA256 of email"),
    Column("sex", String(1), nullable=False),
    Column("birth_year", SmallInteger),
    Column("first_run_id", Integer, ForeignKey("etl_run.run_id"), nullable=False),
    Column(
        "record_key",
        SmallInteger,
        comment="Cell key method: 0-255, first byte of an HMAC of the pseudonym",
    ),
    CheckConstraint("sex IN ('F', 'M', 'U')", name="sex"),
    comment="Pseudonymised users (no direct identifier)",
)

# The users still without a record key (the load's new users, until it gives them one): the
# load finds them through this small index instead of reading every user.
Index(
    "ix_dim_user_without_record_key",
    dim_user.c.user_id,
    sqlite_where=dim_user.c.record_key.is_(None),
    postgresql_where=dim_user.c.record_key.is_(None),
)

user_address = Table(
    "user_address",
    metadata,
    Column("address_id", SurrogateKey, primary_key=True, autoincrement=True),
    Column("user_id", SurrogateKey, ForeignKey("dim_user.user_id"), nullable=False),
    Column(
        "postcode",
        String(8),
        comment="Normalised postcode at the warehouse's location precision, or NULL",
    ),
    Column("postcode_district", String(4), comment="Outward code, unless precision is authority"),
    Column(
        "postcode_token",
        String(32),
        comment="Keyed HMAC of the full postcode: detects moves without keeping the postcode",
    ),
    Column("postcode_kind", String(8), nullable=False),
    Column(
        "local_authority_code",
        String(16),
        ForeignKey("dim_local_authority.code"),
        nullable=False,
    ),
    Column("location_status", String(20), nullable=False),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_to", DateTime),
    Column("is_current", Boolean, nullable=False),
    Column("opened_run_id", Integer, ForeignKey("etl_run.run_id"), nullable=False),
    Column("closed_run_id", Integer, ForeignKey("etl_run.run_id")),
    Column(
        "recorded_run_id",
        Integer,
        comment="The load that recorded the row, when not the one that opened it (a correction)",
    ),
    CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="interval"),
    CheckConstraint("is_current = (valid_to IS NULL)", name="current_is_open"),
    comment="Where each user lived when: SCD type 2, half-open [valid_from, valid_to)",
)

# At most one current row per user, enforced by the database.
Index(
    "ux_user_address_current",
    user_address.c.user_id,
    unique=True,
    sqlite_where=user_address.c.is_current,
    postgresql_where=user_address.c.is_current,
)
Index("ix_user_address_user_valid", user_address.c.user_id, user_address.c.valid_from)
# An as-of query for a recent date skips the many closed periods that ended before it.
Index(
    "ix_user_address_valid_to",
    user_address.c.valid_to,
    user_address.c.valid_from,
    postgresql_include=["local_authority_code", "user_id"],
)
Index(
    "ix_user_address_valid",
    user_address.c.valid_from,
    user_address.c.valid_to,
    user_address.c.local_authority_code,
)

etl_run = Table(
    "etl_run",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("as_of", DateTime, nullable=False, comment="The snapshot time t of the load"),
    Column("status", String(16), nullable=False),
    Column("key_id", String(32), nullable=False, comment="Identifies the pseudonym key"),
    Column("users_sha256", String(64)),
    Column("postcodes_sha256", String(64)),
    Column("users_in_snapshot", Integer, nullable=False, server_default=text("0")),
    Column("duplicates", Integer, nullable=False, server_default=text("0")),
    Column("new_users", Integer, nullable=False, server_default=text("0")),
    Column("returned_users", Integer, nullable=False, server_default=text("0")),
    Column("moved_users", Integer, nullable=False, server_default=text("0")),
    Column("left_users", Integer, nullable=False, server_default=text("0")),
    Column("unchanged_users", Integer, nullable=False, server_default=text("0")),
    Column("rejected_records", Integer, nullable=False, server_default=text("0")),
    Column("postcodes_loaded", Integer),
    Column("details", JSON, comment="Location counts and data-quality summary (no PII)"),
    Column(
        "undone_run_id",
        Integer,
        comment="The undo or replacing load that retired this load's snapshot",
    ),
    comment="One row per load: checksums, as-of time and counts",
)
Index("ix_etl_run_as_of", etl_run.c.as_of)

# Recorded time (README "Correcting history"): a correction never edits a row of
# user_address in place, it retires it. Retired rows move here unchanged, with the run that
# retired them, so that `--as-known-at` can read the warehouse as it was before.
user_address_retired = Table(
    "user_address_retired",
    metadata,
    Column("address_id", SurrogateKey, primary_key=True, autoincrement=False),
    Column("retired_run_id", Integer, ForeignKey("etl_run.run_id"), primary_key=True),
    Column("user_id", SurrogateKey, ForeignKey("dim_user.user_id"), nullable=False),
    Column("postcode", String(8)),
    Column("postcode_district", String(4)),
    Column("postcode_token", String(32)),
    Column("postcode_kind", String(8), nullable=False),
    Column("local_authority_code", String(16), nullable=False),
    Column("location_status", String(20), nullable=False),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_to", DateTime),
    Column("is_current", Boolean, nullable=False),
    Column("opened_run_id", Integer, nullable=False),
    Column("closed_run_id", Integer),
    Column("recorded_run_id", Integer),
    comment="Rows of user_address retired by a correction (late snapshot, replace, undo)",
)

# What the valid-time history does not keep of a snapshot: each user's sex and birth year
# as that snapshot gave them (type 1 attributes), compressed. With the history and the list
# of loaded snapshot times, it lets an undo re-derive the attributes (README).
snapshot_ledger = Table(
    "snapshot_ledger",
    metadata,
    Column("run_id", Integer, ForeignKey("etl_run.run_id", ondelete="CASCADE"), primary_key=True),
    Column("users", Integer, nullable=False),
    Column("attributes", LargeBinary, nullable=False, comment="zlib: user ids, sex, birth year"),
    comment="The part of each loaded snapshot the history does not keep (no PII)",
)

# Kimball's periodic snapshot: how many users each authority had at each loaded snapshot time.
# Kept by warehouse/snapshot_facts.py in the load's transaction; a report at any time reads the
# few hundred rows of the latest snapshot at or before it instead of the address history. Like
# the history, the facts are kept in recorded time: a correction retires rows, never edits them.
fact_snapshot_authority = Table(
    "fact_snapshot_authority",
    metadata,
    Column("snapshot_at", DateTime, primary_key=True, comment="A loaded snapshot's time t"),
    Column(
        "local_authority_code",
        String(16),
        primary_key=True,
        comment="As supplied (user_address.local_authority_code)",
    ),
    Column("users", Integer, nullable=False, comment="Users whose address row was valid at t"),
    Column(
        "recorded_run_id",
        Integer,
        primary_key=True,
        comment="The load (or undo) that computed the row",
    ),
    Column(
        "retired_run_id",
        Integer,
        nullable=True,
        comment="The load or undo that computed the snapshot again (NULL: the latest knowledge)",
    ),
    comment="Users by local authority at each loaded snapshot (periodic snapshot facts)",
)

# What the newest lookup version's re-location changes in those facts: per snapshot time and
# authority code, the users it moves in (+) and out (-). The headline report on the lookup
# basis adds them to the facts: its cost does not grow with the periods a version re-located.
fact_snapshot_relocation = Table(
    "fact_snapshot_relocation",
    metadata,
    Column("snapshot_at", DateTime, primary_key=True, comment="A loaded snapshot's time t"),
    Column("version_id", Integer, primary_key=True, comment="The lookup version re-locating"),
    Column("local_authority_code", String(16), primary_key=True),
    Column("users", Integer, nullable=False, comment="Users moved into (+) or out of (-) it"),
    Column("recorded_run_id", Integer, primary_key=True),
    Column("retired_run_id", Integer, nullable=True),
    comment="Re-location's change to fact_snapshot_authority, per lookup version (facts)",
)

# Recorded time for the type 1 attributes: a run that overwrites a user's sex or birth year
# (a newer snapshot, a late one, an undo) keeps the values it replaced, so the warehouse as
# known at an earlier run still gives them (warehouse/history.py, known_at).
user_attributes_retired = Table(
    "user_attributes_retired",
    metadata,
    Column(
        "user_id",
        SurrogateKey,
        ForeignKey("dim_user.user_id"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("retired_run_id", Integer, ForeignKey("etl_run.run_id"), primary_key=True),
    Column("sex", String(1), nullable=False),
    Column("birth_year", SmallInteger),
    comment="Sex and birth year as they were before the run that overwrote them (no PII)",
)

lookup_version = Table(
    "lookup_version",
    metadata,
    Column("version_id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False),
    Column("source", String(512), nullable=False, comment="URL or file name it was loaded from"),
    Column("published", String(7), comment="YYYY-MM: the lookup's publication month"),
    Column(
        "published_from",
        String(4),
        nullable=False,
        comment="name: read from the file name; data: the newest introduction date in it",
    ),
    Column("postcodes", Integer, nullable=False),
    Column("loaded_at", DateTime, nullable=False),
    Column(
        "run_id",
        Integer,
        ForeignKey("etl_run.run_id", ondelete="SET NULL"),
        comment="The load that brought it",
    ),
    Column(
        "relocation_complete",
        Boolean,
        nullable=False,
        server_default=false(),
        comment=(
            "address_relocation holds every period this version locates elsewhere than "
            "recorded (false: loaded before revision 0011)"
        ),
    ),
    comment="Every postcode lookup loaded, in order: the newest is dim_postcode",
)


address_relocation = Table(
    "address_relocation",
    metadata,
    Column("version_id", Integer, primary_key=True, autoincrement=False),
    Column("address_id", SurrogateKey, primary_key=True, autoincrement=False),
    Column("local_authority_code", String(16), nullable=False),
    Column("location_status", String(20), nullable=False),
    comment="Address periods a lookup version locates elsewhere than they were recorded",
    # No foreign keys: derived rows, written and deleted by set-based statements only (a check
    # of three keys a row was most of a national re-location's writes on PostgreSQL).
    # SQLite: the rows live in the primary key's B-tree, so a report's probe per period
    # finds the authority in one look-up instead of two.
    sqlite_with_rowid=False,
)

# The re-location of rows a correction retired (user_address_retired), kept with the run that
# retired them: ``report --as-known-at`` before that run reads them as they were.
address_relocation_retired = Table(
    "address_relocation_retired",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey("lookup_version.version_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("address_id", SurrogateKey, primary_key=True, autoincrement=False),
    Column("retired_run_id", Integer, ForeignKey("etl_run.run_id"), nullable=False),
    Column("local_authority_code", String(16), nullable=False),
    Column("location_status", String(20), nullable=False),
    comment="address_relocation rows of address periods a correction retired",
    sqlite_with_rowid=False,
)
