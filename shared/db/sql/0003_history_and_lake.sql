-- The hourly history of entity streams (partitioned by month, with
-- retention), and the data lake's export manifest.

-- Every reading of an entity stream whose declaration keeps a history: what
-- the hourly table is aggregated from, and the proof that a reading was
-- counted already (a redelivered batch inserts nothing here, so it adds
-- nothing to the hours either).
-- Byte-order collation on the key: it is only ever compared for equality,
-- and every event of an entity stream passes through this index.
CREATE TABLE entity_readings (
    stream         text COLLATE "C" NOT NULL,
    key            text        NOT NULL,
    hour           timestamptz NOT NULL,
    event_id       text COLLATE "C" NOT NULL,
    reading_at     timestamptz NOT NULL,
    value          double precision,
    deviation      double precision,
    alert          boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (stream, event_id, hour)
) PARTITION BY RANGE (hour);

-- Per entity and hour: the mean of the declared value (value_sum /
-- value_count), the declared deviation as it stood at the hour's latest
-- reading, how many readings raised an alert, and the entity's kind, place
-- and area at that reading.
CREATE TABLE entity_history (
    stream         text        NOT NULL,
    key            text        NOT NULL,
    hour           timestamptz NOT NULL,
    readings       integer     NOT NULL,
    value_count    integer     NOT NULL,
    value_sum      double precision NOT NULL,
    deviation      double precision,
    anomalies      integer     NOT NULL,
    kind           text,
    area           text,
    latitude       double precision,
    longitude      double precision,
    last_reading_at timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, key, hour)
) PARTITION BY RANGE (hour);
CREATE INDEX entity_history_hour ON entity_history (stream, hour);

-- The month partitions of both tables: <table>_pYYYYMM, for the UTC month.
CREATE FUNCTION fluxo_history_partition(parent text, month timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT parent || '_p' || to_char(date_trunc('month', month, 'UTC') AT TIME ZONE 'UTC', 'YYYYMM')
$$;

-- Create the partitions of the months of `months` that do not exist yet.
-- Concurrent callers serialise on an advisory lock per partition.
CREATE FUNCTION fluxo_history_ensure_months(months timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month timestamptz;
    start timestamptz;
    parent text;
    partition text;
    created integer := 0;
BEGIN
    FOREACH month IN ARRAY months LOOP
        start := date_trunc('month', month, 'UTC');
        FOREACH parent IN ARRAY ARRAY['entity_readings', 'entity_history'] LOOP
            partition := fluxo_history_partition(parent, start);
            IF to_regclass(partition) IS NULL THEN
                PERFORM pg_advisory_xact_lock(hashtext(partition));
                IF to_regclass(partition) IS NULL THEN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   partition, parent, start, start + interval '1 month');
                    created := created + 1;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- Retention: drop (not delete from) every month partition that ends at or
-- before `horizon`; returns the partitions dropped.
CREATE FUNCTION fluxo_history_drop_before(horizon timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    partition record;
    month timestamptz;
BEGIN
    FOR partition IN
        SELECT child.relname AS name
        FROM pg_inherits i
        JOIN pg_class child ON child.oid = i.inhrelid
        JOIN pg_class parent ON parent.oid = i.inhparent
        WHERE parent.relname IN ('entity_readings', 'entity_history')
          AND child.relname ~ '_p[0-9]{6}$'
        ORDER BY child.relname
    LOOP
        month := make_timestamptz(substring(partition.name from '_p([0-9]{4})[0-9]{2}$')::int,
                                  substring(partition.name from '_p[0-9]{4}([0-9]{2})$')::int, 1, 0, 0, 0, 'UTC');
        IF month + interval '1 month' <= horizon THEN
            EXECUTE format('DROP TABLE %I', partition.name);
            RETURN NEXT partition.name;
        END IF;
    END LOOP;
END
$$;

-- The data lake. Rows of predictions and alerts carry the id of the
-- transaction that wrote them: an export takes the rows of transactions
-- below the oldest one still running (pg_snapshot_xmin), so a range of ids,
-- once exported, can never gain a row. Rows written before this migration
-- read as id 0 and go with the first export (a constant default is stored
-- once in the catalog: adding the column rewrites nothing), later rows get
-- their transaction's id.
ALTER TABLE predictions ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE predictions ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX predictions_txid ON predictions (stream, txid);
ALTER TABLE alerts ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE alerts ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX alerts_txid ON alerts (stream, txid);

-- An export run: on demand (POST /v1/exports) or on the exporter's schedule.
CREATE TABLE exports (
    id             text PRIMARY KEY,
    trigger        text        NOT NULL CHECK (trigger IN ('schedule', 'command')),
    streams        text[]      NOT NULL DEFAULT '{}',
    kinds          text[]      NOT NULL DEFAULT '{}',
    destination    text,
    status         text        NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    error          text,
    files          integer     NOT NULL DEFAULT 0,
    rows           bigint      NOT NULL DEFAULT 0,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz
);
CREATE INDEX exports_open ON exports (requested_at) WHERE status IN ('queued', 'running');
CREATE INDEX exports_trigger ON exports (trigger, requested_at DESC);

-- The manifest. A segment is a slice of one stream's source planned before
-- anything is written: Kafka offsets [cursor_from, cursor_to) of one
-- partition (features), transaction ids (predictions, alerts) or hours as
-- epoch seconds (history). A pending segment is redone with the same bounds
-- by the next export, so its files come out with the same names and rows.
CREATE TABLE export_segments (
    id             bigserial PRIMARY KEY,
    destination    text        NOT NULL,
    stream         text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('features', 'predictions', 'alerts', 'history')),
    part           integer     NOT NULL DEFAULT 0,
    cursor_from    bigint      NOT NULL,
    cursor_to      bigint      NOT NULL CHECK (cursor_to > cursor_from),
    status         text        NOT NULL CHECK (status IN ('pending', 'committed')),
    export_id      text        NOT NULL REFERENCES exports (id),
    rows           bigint,
    planned_at     timestamptz NOT NULL DEFAULT now(),
    committed_at   timestamptz,
    UNIQUE (destination, stream, kind, part, cursor_from)
);
CREATE INDEX export_segments_pending ON export_segments (destination, stream, kind) WHERE status = 'pending';

-- Every committed file, and the segment whose rows it holds (one file per
-- segment and date).
CREATE TABLE export_files (
    destination    text        NOT NULL,
    path           text        NOT NULL,
    segment_id     bigint      NOT NULL REFERENCES export_segments (id),
    export_id      text        NOT NULL REFERENCES exports (id),
    stream         text        NOT NULL,
    kind           text        NOT NULL,
    date           date        NOT NULL,
    rows           integer     NOT NULL,
    bytes          bigint      NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, path)
);
CREATE INDEX export_files_export ON export_files (export_id, stream, kind);
