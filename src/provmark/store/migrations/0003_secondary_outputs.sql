-- v2 records may have several outputs; records.output_sha256 holds the primary one.
-- The others are indexed here so that verify (by_output) and find(output=...) find
-- every output of a generation, not only the first.
CREATE TABLE IF NOT EXISTS outputs (
    sha256 TEXT NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (sha256, idx)
);
CREATE INDEX IF NOT EXISTS outputs_idx ON outputs (idx);
INSERT INTO outputs (sha256, idx)
SELECT DISTINCT o ->> 'sha256', r.idx
FROM records r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN position('"outputs"' IN convert_from(r.payload, 'UTF8')) > 0
         THEN COALESCE(convert_from(r.payload, 'UTF8')::jsonb -> 'outputs', '[]'::jsonb)
         ELSE '[]'::jsonb END
) AS o
WHERE o ->> 'sha256' IS NOT NULL AND o ->> 'sha256' IS DISTINCT FROM r.output_sha256
ON CONFLICT DO NOTHING;
