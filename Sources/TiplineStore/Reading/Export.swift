public import Postgres

/// Streams every report as one JSON object per line, exactly as DESIGN.md's export contract says.
public enum ReportExport {
    /// Calls `emit` with one JSON line per report whose id is greater than `start`, in id order,
    /// reading pages of `pageSize`.
    public static func run(_ database: Database, after start: Int64 = 0, pageSize: Int = 5000,
                           emit: (String) throws -> Void) async throws {
        var after = start
        while true {
            let rows = try await database.query("""
                SELECT r.id, json_build_object(
                         'id', r.id,
                         'external_id', r.external_id,
                         'source', r.source,
                         'channel', r.channel,
                         'status', coalesce(j.state, r.state),
                         'outcome', r.outcome,
                         'offender_id', coalesce(o.merged_into, r.offender_id),
                         'level', r.level,
                         'category', r.category,
                         'contacts', coalesce((
                             SELECT json_agg(json_build_object('kind', c.kind, 'value', c.value) ORDER BY c.kind, c.value)
                               FROM unnest(r.contact_ids) AS l (id) JOIN contacts c ON c.id = l.id), '[]'::json),
                         'reported_at', to_char(r.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                         'processed_at', to_char(r.processed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                       )::text
                  FROM reports r LEFT JOIN jobs j ON j.report_id = r.id
                  LEFT JOIN offenders o ON o.id = r.offender_id  -- a merged seller's reports name the survivor
                 WHERE r.id > \(after)
                 ORDER BY r.id
                 LIMIT \(pageSize)
                """)
            for row in rows { try emit(try row.decode(String.self, at: 1)) }
            guard rows.count == pageSize, let last = rows.last else { return }
            after = try last.decode(Int64.self, at: 0)
        }
    }
}
