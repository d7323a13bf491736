-- "The" prediction of an event for a task is the first scored row the
-- champion wrote for it. A batch delivered again after a model swap would
-- otherwise add a second served row from the newer model; with this index
-- the consumer's INSERT ... ON CONFLICT DO NOTHING keeps the first. (An
-- 'unscored' row, written while no model existed, may still be followed by
-- the scored one; a shadow's rows are apart.)
DELETE FROM predictions later
USING predictions earlier
WHERE later.event_id = earlier.event_id AND later.task = earlier.task
  AND later.role = 'champion' AND earlier.role = 'champion'
  AND later.status = 'scored' AND earlier.status = 'scored'
  AND (later.scored_at, later.model_version) > (earlier.scored_at, earlier.model_version);
CREATE UNIQUE INDEX predictions_one_served ON predictions (event_id, task) WHERE role = 'champion' AND status = 'scored';
