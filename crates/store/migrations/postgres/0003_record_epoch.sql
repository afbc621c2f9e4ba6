-- The counter epoch each request record was committed in. A writer whose commit's
-- answer was lost (the connection broke after COMMIT) finds its records already stored
-- when it writes them again; their epoch tells whether a counter rebuild has counted
-- them since (another epoch) or their charge is still missing (the same epoch).
-- `record_requests` sets `spendgate.epoch` for its transaction; the default reads it.
ALTER TABLE request_records
    ADD COLUMN epoch TEXT NOT NULL DEFAULT COALESCE(current_setting('spendgate.epoch', true), '');
