-- Streams declared as data: every registered version of every stream, and
-- the tables that used to name the pressure stream's columns made general.

CREATE TABLE streams (
    name           text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    status         text        NOT NULL CHECK (status IN ('active', 'archived')),
    declaration    jsonb       NOT NULL,
    fingerprint    text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Classification details a metric cannot hold: the class labels and the
-- confusion matrix on the held-out rows.
ALTER TABLE models ADD COLUMN evaluation jsonb NOT NULL DEFAULT '{}';

-- Classification: the predicted and the actual class as the user's labels
-- (prediction and actual hold their class indices).
ALTER TABLE predictions ADD COLUMN label text;
ALTER TABLE predictions ADD COLUMN actual_label text;
-- Regression: the error relative to the actual value, in percent.
ALTER TABLE predictions ADD COLUMN percent_error double precision;

-- Prediction against actual per model version, with the relative error.
DROP VIEW model_errors;
CREATE VIEW model_errors AS
SELECT stream, task, model_version, model_id,
       count(*) FILTER (WHERE actual IS NOT NULL)            AS with_actual,
       avg(abs(error)) FILTER (WHERE actual IS NOT NULL)      AS mean_abs_error,
       avg(abs(percent_error)) FILTER (WHERE percent_error IS NOT NULL) AS mean_abs_percent_error,
       avg(CASE WHEN error = 0 THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE actual IS NOT NULL)                 AS accuracy,
       max(scored_at)                                        AS last_scored_at
FROM predictions
WHERE status = 'scored'
GROUP BY stream, task, model_version, model_id;

-- Alerts about any entity stream: the entity's key and area (for pressure:
-- the sensor id and the neighbourhood) and the task that raised them.
ALTER TABLE alerts RENAME COLUMN sensor_id TO key;
ALTER TABLE alerts RENAME COLUMN neighbourhood TO area;
ALTER TABLE alerts ADD COLUMN task text;
DROP INDEX alerts_sensor;
CREATE INDEX alerts_key ON alerts (stream, key, created_at DESC);

-- The latest state of each entity of each entity stream (was sensor_state,
-- which named the pressure stream's columns).
DROP TABLE sensor_state;
CREATE TABLE entity_state (
    stream         text        NOT NULL,
    key            text        NOT NULL,
    area           text,
    latitude       double precision,
    longitude      double precision,
    kind           text,
    state          jsonb       NOT NULL DEFAULT '{}',
    last_score     double precision,
    alert          boolean     NOT NULL DEFAULT false,
    reading_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, key)
);
