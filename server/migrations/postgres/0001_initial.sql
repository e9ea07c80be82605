-- Worktrail schema, PostgreSQL flavour. Ids are UUIDv7, times epoch milliseconds.
-- Every tenant table has company_id NOT NULL leading its primary key and indexes. The unique
-- indexes on secret hashes are the one exception: they are how a request finds its company.

CREATE TABLE plans (
    id                  UUID PRIMARY KEY,
    code                TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    max_seats           BIGINT NOT NULL CHECK (max_seats > 0),
    retention_days      BIGINT NOT NULL CHECK (retention_days > 0),
    screenshots_allowed BOOLEAN NOT NULL,
    price_cents         BIGINT NOT NULL CHECK (price_cents >= 0),
    trial_days          BIGINT NOT NULL CHECK (trial_days >= 0),
    created_at_ms       BIGINT NOT NULL
);

-- Platform operators (OWNER). Not tenant data: they belong to no company.
CREATE TABLE owners (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE companies (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    plan_id         UUID NOT NULL REFERENCES plans (id),
    time_zone       TEXT NOT NULL,
    suspended_at_ms BIGINT,
    policy_json     TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    last_sync_at_ms BIGINT
);

CREATE TABLE company_keys (
    company_id     UUID NOT NULL REFERENCES companies (id),
    id             UUID NOT NULL,
    key_hash       BYTEA NOT NULL,
    display_prefix TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT,
    revoked_at_ms  BIGINT,
    PRIMARY KEY (company_id, id)
);
CREATE UNIQUE INDEX company_keys_hash ON company_keys (key_hash);

CREATE TABLE subscriptions (
    company_id       UUID PRIMARY KEY REFERENCES companies (id),
    plan_id          UUID NOT NULL REFERENCES plans (id),
    status           TEXT NOT NULL,
    trial_ends_at_ms BIGINT,
    period_end_at_ms BIGINT,
    grace_days       BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE subscription_events (
    company_id       UUID NOT NULL REFERENCES companies (id),
    id               UUID NOT NULL,
    status           TEXT NOT NULL,
    plan_id          UUID NOT NULL,
    trial_ends_at_ms BIGINT,
    period_end_at_ms BIGINT,
    reason           TEXT NOT NULL,
    at_ms            BIGINT NOT NULL,
    PRIMARY KEY (company_id, id)
);

CREATE TABLE users (
    company_id    UUID NOT NULL REFERENCES companies (id),
    id            UUID NOT NULL,
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('ADMIN', 'EMPLOYEE')),
    password_hash TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (company_id, id),
    UNIQUE (company_id, email)
);

CREATE TABLE devices (
    company_id      UUID NOT NULL REFERENCES companies (id),
    id              UUID NOT NULL,
    employee_id     UUID NOT NULL,
    hostname        TEXT NOT NULL,
    os              TEXT NOT NULL,
    os_user         TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    token_prefix    TEXT NOT NULL,
    enrolled_at_ms  BIGINT NOT NULL,
    last_seen_at_ms BIGINT,
    clock_offset_ms BIGINT,
    revoked_at_ms   BIGINT,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, employee_id) REFERENCES users (company_id, id)
);
CREATE UNIQUE INDEX devices_token_hash ON devices (token_hash);
CREATE INDEX devices_employee ON devices (company_id, employee_id);

CREATE TABLE ingest_batches (
    company_id          UUID NOT NULL REFERENCES companies (id),
    batch_id            UUID NOT NULL,
    device_id           UUID NOT NULL,
    body_hash           BYTEA NOT NULL,
    ack_json            TEXT,
    record_count        BIGINT NOT NULL,
    body_bytes          BIGINT NOT NULL,
    received_at_ms      BIGINT NOT NULL,
    device_sent_at_ms   BIGINT NOT NULL,
    dropped_screenshots BIGINT NOT NULL,
    dropped_records     BIGINT NOT NULL,
    PRIMARY KEY (company_id, batch_id)
);
CREATE INDEX ingest_batches_received ON ingest_batches (company_id, received_at_ms);

CREATE TABLE app_usage (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    device_id   UUID NOT NULL,
    employee_id UUID NOT NULL,
    seq         BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    app         TEXT NOT NULL,
    exe         TEXT,
    title       TEXT,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX app_usage_employee_time ON app_usage (company_id, employee_id, start_ms);

CREATE TABLE website_usage (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    device_id   UUID NOT NULL,
    employee_id UUID NOT NULL,
    seq         BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    domain      TEXT NOT NULL,
    url         TEXT,
    title       TEXT,
    browser     TEXT,
    source      TEXT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX website_usage_employee_time ON website_usage (company_id, employee_id, start_ms);

CREATE TABLE idle_spans (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    device_id   UUID NOT NULL,
    employee_id UUID NOT NULL,
    seq         BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX idle_spans_employee_time ON idle_spans (company_id, employee_id, start_ms);

CREATE TABLE work_sessions (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    device_id   UUID NOT NULL,
    employee_id UUID NOT NULL,
    seq         BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    end_reason  TEXT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX work_sessions_employee_time ON work_sessions (company_id, employee_id, start_ms);

CREATE TABLE activity_log (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    device_id   UUID NOT NULL,
    employee_id UUID NOT NULL,
    seq         BIGINT NOT NULL,
    minute_ms   BIGINT NOT NULL,
    active_secs BIGINT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX activity_log_employee_time ON activity_log (company_id, employee_id, minute_ms);

CREATE TABLE screenshots (
    company_id     UUID NOT NULL REFERENCES companies (id),
    id             UUID NOT NULL,
    device_id      UUID NOT NULL,
    employee_id    UUID NOT NULL,
    seq            BIGINT NOT NULL,
    taken_at_ms    BIGINT NOT NULL,
    monitor        BIGINT NOT NULL,
    width          BIGINT NOT NULL,
    height         BIGINT NOT NULL,
    bytes          BIGINT NOT NULL,
    blurred        BOOLEAN NOT NULL,
    object_key     TEXT,
    sha256         BYTEA,
    uploaded_at_ms BIGINT,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX screenshots_employee_time ON screenshots (company_id, employee_id, taken_at_ms);

CREATE TABLE projects (
    company_id    UUID NOT NULL REFERENCES companies (id),
    id            UUID NOT NULL,
    name          TEXT NOT NULL,
    archived      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (company_id, id),
    UNIQUE (company_id, name)
);

CREATE TABLE tasks (
    company_id    UUID NOT NULL REFERENCES companies (id),
    id            UUID NOT NULL,
    project_id    UUID NOT NULL,
    name          TEXT NOT NULL,
    archived      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, project_id) REFERENCES projects (company_id, id)
);
CREATE INDEX tasks_project ON tasks (company_id, project_id);

CREATE TABLE company_usage_daily (
    company_id        UUID NOT NULL REFERENCES companies (id),
    day               TEXT NOT NULL,
    active_employees  BIGINT NOT NULL,
    active_devices    BIGINT NOT NULL,
    tracked_secs      BIGINT NOT NULL,
    idle_secs         BIGINT NOT NULL,
    work_sessions     BIGINT NOT NULL,
    screenshots       BIGINT NOT NULL,
    records           BIGINT NOT NULL,
    bytes_ingested    BIGINT NOT NULL,
    sync_requests     BIGINT NOT NULL,
    rejected_requests BIGINT NOT NULL,
    computed_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (company_id, day)
);

-- Append-only: no UPDATE or DELETE is ever issued against these two.
CREATE TABLE audit_log (
    company_id  UUID NOT NULL REFERENCES companies (id),
    id          UUID NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX audit_log_time ON audit_log (company_id, at_ms);

CREATE TABLE data_access_log (
    company_id UUID NOT NULL REFERENCES companies (id),
    id         UUID NOT NULL,
    viewer_id  UUID NOT NULL,
    subject_id UUID NOT NULL,
    what       TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX data_access_log_subject ON data_access_log (company_id, subject_id, at_ms);
