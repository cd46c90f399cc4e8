-- provmark store schema v1 (PostgreSQL): the same tables as the SQLite store.
-- records: exact signed payload bytes; idx is the record's index in the Merkle log.
CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE records (
    idx bigint PRIMARY KEY,
    record_id uuid NOT NULL UNIQUE,
    slug text NOT NULL,
    output_sha256 text,
    model text NOT NULL,
    model_version text,
    operation text NOT NULL,
    status text NOT NULL,
    actor text,
    generated_at timestamptz NOT NULL,
    payload bytea NOT NULL,
    signature text NOT NULL
);
CREATE INDEX records_output ON records (output_sha256);
CREATE INDEX records_slug ON records (slug);
CREATE INDEX records_model ON records (model, generated_at);
CREATE INDEX records_actor ON records (actor, generated_at);
CREATE INDEX records_time ON records (generated_at);

CREATE TABLE tags (
    key text NOT NULL,
    value text NOT NULL,
    idx bigint NOT NULL,
    PRIMARY KEY (key, value, idx)
);

-- Perfect Merkle subtrees; level 0 holds the leaf hashes.
CREATE TABLE nodes (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed C2SP checkpoint notes, one per tree size.
CREATE TABLE checkpoints (
    size bigint PRIMARY KEY,
    root bytea NOT NULL,
    note text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE keys (
    key_id text PRIMARY KEY,
    body text NOT NULL
);
