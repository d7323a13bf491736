-- Fluxo's schema: model registry, training runs, predictions, alerts,
-- uploaded datasets and the latest state of each pressure sensor.

CREATE TABLE models (
    id             bigserial PRIMARY KEY,
    stream         text        NOT NULL,
    task           text        NOT NULL,
    version        integer     NOT NULL,
    algorithm      text        NOT NULL,
    hyperparameters jsonb      NOT NULL DEFAULT '{}',
    features       jsonb       NOT NULL,
    metrics        jsonb       NOT NULL DEFAULT '{}',
    training_window jsonb      NOT NULL DEFAULT '{}',
    rows_trained   integer     NOT NULL,
    bundle_dir     text        NOT NULL,
    sha256         jsonb       NOT NULL,
    size_bytes     bigint      NOT NULL,
    run_id         text,
    active         boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, task, version)
);
-- At most one active model per stream and task.
CREATE UNIQUE INDEX models_one_active ON models (stream, task) WHERE active;

CREATE TABLE training_runs (
    run_id         text PRIMARY KEY,
    stream         text        NOT NULL,
    task           text        NOT NULL,
    algorithm      text,
    request        jsonb       NOT NULL DEFAULT '{}',
    trigger        text        NOT NULL DEFAULT 'command',
    status         text        NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    model_id       bigint REFERENCES models (id),
    metrics        jsonb,
    decision       text,
    candidate_score double precision,
    active_score   double precision,
    error          text,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz
);
CREATE INDEX training_runs_stream_task ON training_runs (stream, task, requested_at DESC);

-- One row per event, task and model version: a redelivered batch upserts
-- onto the same rows. model_version 0 marks an event scored by no model.
CREATE TABLE predictions (
    event_id       text        NOT NULL,
    stream         text        NOT NULL,
    task           text        NOT NULL,
    model_version  integer     NOT NULL,
    model_id       bigint,
    key            text,
    status         text        NOT NULL CHECK (status IN ('scored', 'unscored')),
    prediction     double precision,
    score          double precision,
    actual         double precision,
    error          double precision,
    produced_at    timestamptz,
    scored_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, task, model_version)
);
CREATE INDEX predictions_stream_time ON predictions (stream, scored_at DESC);
CREATE INDEX predictions_model ON predictions (model_id) WHERE model_id IS NOT NULL;

-- Prediction against actual, per model version, queryable directly.
CREATE VIEW model_errors AS
SELECT stream, task, model_version, model_id,
       count(*) FILTER (WHERE actual IS NOT NULL)            AS with_actual,
       avg(abs(error)) FILTER (WHERE actual IS NOT NULL)      AS mean_abs_error,
       avg(CASE WHEN error = 0 THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE actual IS NOT NULL)                 AS accuracy,
       max(scored_at)                                        AS last_scored_at
FROM predictions
WHERE status = 'scored'
GROUP BY stream, task, model_version, model_id;

CREATE TABLE alerts (
    event_id       text PRIMARY KEY,
    stream         text        NOT NULL,
    sensor_id      text        NOT NULL,
    neighbourhood  text,
    latitude       double precision,
    longitude      double precision,
    value          double precision NOT NULL,
    score          double precision NOT NULL,
    model_version  integer     NOT NULL,
    reading_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_time ON alerts (created_at DESC);
CREATE INDEX alerts_sensor ON alerts (sensor_id, created_at DESC);

CREATE TABLE datasets (
    id             text PRIMARY KEY,
    stream         text        NOT NULL,
    filename       text        NOT NULL,
    content_type   text,
    size_bytes     bigint      NOT NULL,
    sha256         text        NOT NULL,
    rows_total     integer     NOT NULL,
    rows_accepted  integer     NOT NULL,
    rows_rejected  integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Latest engineered state per pressure sensor (what /sensors serves).
CREATE TABLE sensor_state (
    sensor_id      text PRIMARY KEY,
    neighbourhood  text,
    latitude       double precision,
    longitude      double precision,
    sensor_type    text,
    pressure_mca   double precision,
    media_hora     double precision,
    media_30d      double precision,
    std_30d        double precision,
    last_score     double precision,
    alert          boolean     NOT NULL DEFAULT false,
    reading_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
