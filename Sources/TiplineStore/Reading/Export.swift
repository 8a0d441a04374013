public import Postgres

/// Streams every report as one JSON object per line, exactly as DESIGN.md's export contract says.
public enum ReportExport {
    /// Calls `emit` with one JSON line per report whose id is greater than `start`, in id order,
    /// reading pages of at most `pageSize` reports and about `pageBytes` of JSON: the server cuts a
    /// page once its lines pass that size (always keeping its first), so that reports naming
    /// thousands of contacts each (a line of up to a quarter of a megabyte) cannot swell a page of
    /// 5,000 to a gigabyte in this process.
    public static func run(_ database: Database, after start: Int64 = 0, pageSize: Int = 5000, pageBytes: Int = 16 << 20,
                           emit: (String) throws -> Void) async throws {
        var after = start
        // Each page's JSON is built for every report it may hold, kept or not: pages start small and
        // double while whole, up to `pageSize`; a page the size cut is followed by one of about as
        // many reports.
        var size = min(pageSize, 100)
        while true {
            let rows = try await database.query("""
                SELECT id, line FROM (
                SELECT id, line, sum(octet_length(line)) OVER (ORDER BY id) - octet_length(line) AS before FROM (
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
                       )::text AS line
                  FROM reports r LEFT JOIN jobs j ON j.report_id = r.id
                  LEFT JOIN offenders o ON o.id = r.offender_id  -- a merged seller's reports name the survivor
                 WHERE r.id > \(after)
                 ORDER BY r.id
                 LIMIT \(size)
                ) page) sized
                 WHERE before < \(pageBytes)
                 ORDER BY id
                """)
            for row in rows { try emit(try row.decode(String.self, at: 1)) }
            // A page cut by size is followed by the next; the end is an empty page.
            guard let last = rows.last else { return }
            after = try last.decode(Int64.self, at: 0)
            size = rows.count < size ? max(1, rows.count + rows.count / 4) : min(pageSize, size * 2)
        }
    }
}
