-- Portal sign-in: sessions (owners and company users) and single-use invitations.

-- A session is found by the SHA-256 of its cookie value; the value itself is never stored.
-- Owner sessions belong to no company, so this is auth infrastructure rather than tenant data.
CREATE TABLE sessions (
    token_hash      BLOB PRIMARY KEY,
    owner_id        BLOB,
    company_id      BLOB,
    user_id         BLOB,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    last_seen_at_ms INTEGER NOT NULL,
    CHECK ((owner_id IS NULL) <> (user_id IS NULL)),
    CHECK ((user_id IS NULL) = (company_id IS NULL))
);
CREATE INDEX sessions_user ON sessions (company_id, user_id);

CREATE TABLE invitations (
    company_id    BLOB NOT NULL REFERENCES companies (id),
    id            BLOB NOT NULL,
    token_hash    BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    created_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, user_id) REFERENCES users (company_id, id)
);
CREATE UNIQUE INDEX invitations_token ON invitations (token_hash);

-- Sign-in finds a user by e-mail before it knows the company (like a key finds its company).
CREATE INDEX users_email ON users (email);
