-- Worktrail schema, SQLite flavour. Ids are 16-byte UUIDv7 blobs, times epoch milliseconds.
-- Every tenant table has company_id NOT NULL leading its primary key and indexes. The unique
-- indexes on secret hashes are the one exception: they are how a request finds its company.

CREATE TABLE plans (
    id                  BLOB PRIMARY KEY,
    code                TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    max_seats           INTEGER NOT NULL CHECK (max_seats > 0),
    retention_days      INTEGER NOT NULL CHECK (retention_days > 0),
    screenshots_allowed INTEGER NOT NULL,
    price_cents         INTEGER NOT NULL CHECK (price_cents >= 0),
    trial_days          INTEGER NOT NULL CHECK (trial_days >= 0),
    created_at_ms       INTEGER NOT NULL
);

-- Platform operators (OWNER). Not tenant data: they belong to no company.
CREATE TABLE owners (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE companies (
    id              BLOB PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    plan_id         BLOB NOT NULL REFERENCES plans (id),
    time_zone       TEXT NOT NULL,
    suspended_at_ms INTEGER,
    policy_json     TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    last_sync_at_ms INTEGER
);

CREATE TABLE company_keys (
    company_id     BLOB NOT NULL REFERENCES companies (id),
    id             BLOB NOT NULL,
    key_hash       BLOB NOT NULL,
    display_prefix TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER,
    revoked_at_ms  INTEGER,
    PRIMARY KEY (company_id, id)
);
CREATE UNIQUE INDEX company_keys_hash ON company_keys (key_hash);

CREATE TABLE subscriptions (
    company_id       BLOB PRIMARY KEY REFERENCES companies (id),
    plan_id          BLOB NOT NULL REFERENCES plans (id),
    status           TEXT NOT NULL,
    trial_ends_at_ms INTEGER,
    period_end_at_ms INTEGER,
    grace_days       INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

CREATE TABLE subscription_events (
    company_id       BLOB NOT NULL REFERENCES companies (id),
    id               BLOB NOT NULL,
    status           TEXT NOT NULL,
    plan_id          BLOB NOT NULL,
    trial_ends_at_ms INTEGER,
    period_end_at_ms INTEGER,
    reason           TEXT NOT NULL,
    at_ms            INTEGER NOT NULL,
    PRIMARY KEY (company_id, id)
);

CREATE TABLE users (
    company_id    BLOB NOT NULL REFERENCES companies (id),
    id            BLOB NOT NULL,
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'EMPLOYEE')),
    password_hash TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (company_id, id),
    UNIQUE (company_id, email)
);

CREATE TABLE devices (
    company_id      BLOB NOT NULL REFERENCES companies (id),
    id              BLOB NOT NULL,
    employee_id     BLOB NOT NULL,
    hostname        TEXT NOT NULL,
    os              TEXT NOT NULL,
    os_user         TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    token_hash      BLOB NOT NULL,
    token_prefix    TEXT NOT NULL,
    enrolled_at_ms  INTEGER NOT NULL,
    last_seen_at_ms INTEGER,
    clock_offset_ms INTEGER,
    revoked_at_ms   INTEGER,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, employee_id) REFERENCES users (company_id, id)
);
CREATE UNIQUE INDEX devices_token_hash ON devices (token_hash);
CREATE INDEX devices_employee ON devices (company_id, employee_id);

CREATE TABLE ingest_batches (
    company_id          BLOB NOT NULL REFERENCES companies (id),
    batch_id            BLOB NOT NULL,
    device_id           BLOB NOT NULL,
    body_hash           BLOB NOT NULL,
    ack_json            TEXT,
    record_count        INTEGER NOT NULL,
    body_bytes          INTEGER NOT NULL,
    received_at_ms      INTEGER NOT NULL,
    device_sent_at_ms   INTEGER NOT NULL,
    dropped_screenshots INTEGER NOT NULL,
    dropped_records     INTEGER NOT NULL,
    PRIMARY KEY (company_id, batch_id)
);
CREATE INDEX ingest_batches_received ON ingest_batches (company_id, received_at_ms);

CREATE TABLE app_usage (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    app         TEXT NOT NULL,
    exe         TEXT,
    title       TEXT,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX app_usage_employee_time ON app_usage (company_id, employee_id, start_ms);

CREATE TABLE website_usage (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    domain      TEXT NOT NULL,
    url         TEXT,
    title       TEXT,
    browser     TEXT,
    source      TEXT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX website_usage_employee_time ON website_usage (company_id, employee_id, start_ms);

CREATE TABLE idle_spans (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX idle_spans_employee_time ON idle_spans (company_id, employee_id, start_ms);

CREATE TABLE work_sessions (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    end_reason  TEXT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX work_sessions_employee_time ON work_sessions (company_id, employee_id, start_ms);

CREATE TABLE activity_log (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    device_id   BLOB NOT NULL,
    employee_id BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    minute_ms   INTEGER NOT NULL,
    active_secs INTEGER NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX activity_log_employee_time ON activity_log (company_id, employee_id, minute_ms);

CREATE TABLE screenshots (
    company_id     BLOB NOT NULL REFERENCES companies (id),
    id             BLOB NOT NULL,
    device_id      BLOB NOT NULL,
    employee_id    BLOB NOT NULL,
    seq            INTEGER NOT NULL,
    taken_at_ms    INTEGER NOT NULL,
    monitor        INTEGER NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    blurred        INTEGER NOT NULL,
    object_key     TEXT,
    sha256         BLOB,
    uploaded_at_ms INTEGER,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX screenshots_employee_time ON screenshots (company_id, employee_id, taken_at_ms);

CREATE TABLE projects (
    company_id    BLOB NOT NULL REFERENCES companies (id),
    id            BLOB NOT NULL,
    name          TEXT NOT NULL,
    archived      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (company_id, id),
    UNIQUE (company_id, name)
);

CREATE TABLE tasks (
    company_id    BLOB NOT NULL REFERENCES companies (id),
    id            BLOB NOT NULL,
    project_id    BLOB NOT NULL,
    name          TEXT NOT NULL,
    archived      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, project_id) REFERENCES projects (company_id, id)
);
CREATE INDEX tasks_project ON tasks (company_id, project_id);

CREATE TABLE company_usage_daily (
    company_id        BLOB NOT NULL REFERENCES companies (id),
    day               TEXT NOT NULL,
    active_employees  INTEGER NOT NULL,
    active_devices    INTEGER NOT NULL,
    tracked_secs      INTEGER NOT NULL,
    idle_secs         INTEGER NOT NULL,
    work_sessions     INTEGER NOT NULL,
    screenshots       INTEGER NOT NULL,
    records           INTEGER NOT NULL,
    bytes_ingested    INTEGER NOT NULL,
    sync_requests     INTEGER NOT NULL,
    rejected_requests INTEGER NOT NULL,
    computed_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (company_id, day)
);

-- Append-only: no UPDATE or DELETE is ever issued against these two.
CREATE TABLE audit_log (
    company_id  BLOB NOT NULL REFERENCES companies (id),
    id          BLOB NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX audit_log_time ON audit_log (company_id, at_ms);

CREATE TABLE data_access_log (
    company_id BLOB NOT NULL REFERENCES companies (id),
    id         BLOB NOT NULL,
    viewer_id  BLOB NOT NULL,
    subject_id BLOB NOT NULL,
    what       TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX data_access_log_subject ON data_access_log (company_id, subject_id, at_ms);
