"""The metadata schema as SQLAlchemy Core tables (Alembic migrations mirror it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names keep migrations identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(40)
KEY = String(250)
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", ID, ForeignKey("experiments.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("experiment_id", ID, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("entry_point", String(1024), nullable=True),
    Column("deleted_at", BigInteger, nullable=True),
    # Last sign of life from the client (SDK heartbeat or a write); stale RUNNING runs end.
    Column("heartbeat_at", BigInteger, nullable=True),
    Index(None, "experiment_id", "start_time"),
    Index(None, "parent_id"),
    Index("ix_runs_status_heartbeat_at", "status", "heartbeat_at"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)

# Full history of every metric, packed: one row per key of each batch, holding that batch's
# points of the key as little-endian records (step int64, timestamp int64, value float64;
# see shipyard.store.points). A 1,000-point batch of 20 keys writes 20 rows, not 1,000, and
# NaN and infinities are kept as the floats they are. Rows of a (run, key) read back in id
# order are the points in the order they were logged.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("key", KEY, nullable=False),
    Column("points", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index(None, "run_id", "key", "id"),
)

# The latest point per (run, key): highest step, then latest timestamp. Searches and
# orderings on metrics read this table, as MLflow's do.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index(None, "key", "value"),
)

# Ids of the metric batches already applied, so a retried batch is written once.
metric_batches = Table(
    "metric_batches",
    metadata,
    Column("batch_id", ID, primary_key=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "digest"),
)

# --- pipelines (revision 0002) -------------------------------------------------------------

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("executor", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Index(None, "pipeline", "started_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline_run_id", ID, ForeignKey("pipeline_runs.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("step", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("code_hash", String(64), nullable=True),
    Column("run_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=False),
    Index(None, "pipeline_run_id", "position"),
)

step_cache = Table(
    "step_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("step", String(250), nullable=False),
    Column("step_run_id", ID, nullable=False),
    Column("outputs", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# What was made from what: nodes are typed strings such as "artifact:<sha256>",
# "step_run:<id>", "pipeline_run:<id>", "run:<id>", "code:<sha256>".
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("source", String(128), nullable=False),
    Column("target", String(128), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "source"),
    Index(None, "target"),
)

# --- schedules (revision 0003) --------------------------------------------------------------

schedules = Table(
    "schedules",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("target", String(1024), nullable=False),
    Column("cron", String(120), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_tick_at", BigInteger, nullable=True),
    Column("executor", String(32), nullable=False, server_default="local"),
)

schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("schedule", String(250), primary_key=True),
    Column("nominal_time", BigInteger, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("pipeline_run_id", ID, nullable=True),
    Column("recorded_at", BigInteger, nullable=False),
    Column("note", Text, nullable=True),
    Index(None, "schedule", "status"),
)

# --- model registry (revision 0004) ---------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # What regulators ask of every model (governance): use case, owner, risk tier, intended
    # use, and how many approvals a promotion to production needs.
    Column("use_case", String(64), nullable=True),
    Column("owner", String(250), nullable=True),
    Column("risk_tier", String(32), nullable=True),
    Column("intended_use", Text, nullable=True),
    Column("approvals_required", Integer, nullable=False, server_default="1"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("name", String(250), ForeignKey("registered_models.name"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(250), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", ID, nullable=False),
    Column("artifact_path", String(500), nullable=False),
    Column("state", String(16), nullable=False),
    Column("description", Text, nullable=False),
    # JSON documents: flavour names, MLflow signature, {file: sha256}, package versions, card.
    Column("flavors", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("files", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("card", Text, nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    UniqueConstraint("name", "version"),
    Index(None, "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("version_id", ID, ForeignKey("model_versions.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(250), ForeignKey("registered_models.name"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# gates --------------------------------------------------------------------------------------

gate_reports = Table(
    "gate_reports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model", String(250), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("data_digest", String(64), nullable=False),
    # The whole GateReport as JSON (checks with their tables), as it was when evaluated.
    Column("report", Text, nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "model", "version", "created_at"),
)


# governance ---------------------------------------------------------------------------------

audit_events = Table(
    "audit_events",
    metadata,
    # The chain's order: contiguous from 1, so a deleted event leaves a gap.
    Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("id", ID, nullable=False, unique=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "object", "seq"),
    Index(None, "time"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user", String(250), ForeignKey("users.name"), nullable=False),
    Column("name", String(250), nullable=False),
    # sha256 of the secret: tokens carry 256 random bits, so a fast hash cannot be guessed
    # back, and lookups stay one indexed read per request.
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model", String(250), ForeignKey("registered_models.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("target", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open, approved, rejected
    Column("requested_by", String(250), nullable=False),
    Column("note", Text, nullable=False),
    Column("gate_report", ID, nullable=True),
    Column("previous_champion", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("decided_at", BigInteger, nullable=True),
    Index(None, "model", "version"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("request_id", ID, ForeignKey("promotion_requests.id"), primary_key=True),
    Column("approver", String(250), primary_key=True),
    Column("decision", String(16), nullable=False),  # approve, reject
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)


openlineage_events = Table(
    "openlineage_events",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("job_namespace", String(500), nullable=False),
    Column("job_name", String(500), nullable=False),
    Column("event_time", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index(None, "run_id"),
)


# monitoring ---------------------------------------------------------------------------------

feedback = Table(
    "feedback",
    metadata,
    Column("deployment", String(250), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("row", Integer, primary_key=True),
    # The label as JSON (a number, a boolean or text), never overwritten.
    Column("label", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("actor", String(250), nullable=False),
    Index(None, "deployment", "received_at"),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("monitor", String(250), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("window_end", BigInteger, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("result", Text, nullable=False),
    Column("evaluated_at", BigInteger, nullable=False),
)


alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("monitor", String(250), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    # The whole alert with its delivery record, as JSON.
    Column("body", Text, nullable=False),
    Index(None, "monitor", "rule", "status"),
)


# Infrastructure as code: objects only a spec declares (gate policies, deployments, monitors,
# alert rules, notifiers), and what the last apply wrote for every object it manages.
def _spec_rows(name: str, stamp: str) -> Table:
    """A (kind, name) -> body table with when (``{stamp}_at``) and by whom it was written."""
    return Table(
        name,
        metadata,
        Column("kind", String(32), primary_key=True),
        Column("name", String(100), primary_key=True),
        Column("body", Text, nullable=False),
        Column(f"{stamp}_at", BigInteger, nullable=False),
        Column(f"{stamp}_by", String(250), nullable=False),
    )


spec_objects = _spec_rows("spec_objects", "updated")
spec_applied = _spec_rows("spec_applied", "applied")

# One row, updated at the start of every apply: applies take its lock, so two run one
# after the other (each plans against what the other wrote).
spec_lock = Table(
    "spec_lock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("applies", BigInteger, nullable=False),
)

# --- edge (revision 0012) -------------------------------------------------------------------

# Signed bundles exported for a device class; the file itself is a blob (blob_key).
edge_bundles = Table(
    "edge_bundles",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("target", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("blob_key", String(300), nullable=False),
    Column("report", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", KEY, nullable=False),
    Index(None, "model", "version"),
)

# Staged rollouts: a share of a device group moves to a bundle; rollback sends it back.
edge_rollouts = Table(
    "edge_rollouts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("device_group", String(64), nullable=False),
    Column("bundle_id", String(160), ForeignKey("edge_bundles.id"), nullable=False),
    Column("previous_bundle_id", String(160), nullable=True),
    Column("percent", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", KEY, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "device_group"),
)

# What each device last reported: its group, the bundle it runs, the telemetry it sent.
edge_devices = Table(
    "edge_devices",
    metadata,
    Column("device", String(100), primary_key=True),
    Column("device_group", String(64), nullable=False),
    Column("bundle_id", String(160), nullable=True),
    Column("last_seen", BigInteger, nullable=False),
    Column("telemetry_seq", BigInteger, nullable=False),
    Column("telemetry_rows", BigInteger, nullable=False),
    Column("dropped_rows", BigInteger, nullable=False),
    Index(None, "device_group"),
)
