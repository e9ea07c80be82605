-- "Open my dashboard": single-use sign-in links an enrolled agent asks for on behalf of its
-- employee. Only the SHA-256 of the link's token is stored; a link works once, for a minute.
-- The link names its company, so redeeming it is a company-scoped lookup like any other.
CREATE TABLE signin_links (
    company_id    BLOB NOT NULL REFERENCES companies (id),
    id            BLOB NOT NULL,
    token_hash    BLOB NOT NULL,
    user_id       BLOB NOT NULL,
    device_id     BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, user_id) REFERENCES users (company_id, id)
);
CREATE UNIQUE INDEX signin_links_token ON signin_links (company_id, token_hash);
