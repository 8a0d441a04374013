import Postgres

extension Queue {
    /// The `ON CONFLICT ... DO UPDATE SET` list that adds a new row of counters to the stored one
    /// (`report_tallies AS t`): every counter column, once, for the completion and the daily fold.
    static let addToTally = """
        done = t.done + excluded.done, rental = t.rental + excluded.rental, sale = t.sale + excluded.sale,
        buyback = t.buyback + excluded.buyback, lookup = t.lookup + excluded.lookup, other = t.other + excluded.other
        """

    /// The same for the escalation counters (rises by the level reached), for statements that
    /// write escalations: the completion of a batch with contacts, an administrator's level, the fold.
    static let addRisesToTally = """
        to_review = t.to_review + excluded.to_review, to_restrict = t.to_restrict + excluded.to_restrict,
        to_suspend = t.to_suspend + excluded.to_suspend, to_refer = t.to_refer + excluded.to_refer
        """

    /// Adds `count` failed attempts to this minute's row of this session: the insert of a CTE whose
    /// `count` is a column expression over earlier CTEs (`FROM source`), only when it is above 0.
    static func tallyFailures(_ count: String, from source: String) -> Query {
        """
        INSERT INTO report_tallies AS t (minute, backend, failed)
        SELECT date_trunc('minute', now()), pg_backend_pid(), n FROM (SELECT \(unescaped: count) AS n FROM \(unescaped: source)) f WHERE n > 0
        ON CONFLICT (minute, backend) DO UPDATE SET failed = t.failed + excluded.failed
        """
    }

    /// Folds the per-minute, per-session completion counters of days before yesterday into one
    /// row per day, so that `tipline status` sums a few thousand rows at most. Safe to run from
    /// any number of workers at once: each row is deleted, and added to its day, exactly once.
    /// Returns the rows folded.
    @discardableResult
    public func foldTallies() async throws -> Int {
        try await database.withConnection { connection in
            try connection.queryPrepared("""
                WITH old AS (
                    DELETE FROM report_tallies
                     WHERE minute < date_trunc('day', now()) - interval '1 day'
                       AND (backend <> 0 OR minute <> date_trunc('day', minute))
                    RETURNING minute, done, rental, sale, buyback, lookup, other, to_review, to_restrict, to_suspend, to_refer, failed
                ), days AS (
                    INSERT INTO report_tallies AS t (minute, backend, done, rental, sale, buyback, lookup, other,
                                                     to_review, to_restrict, to_suspend, to_refer, failed)
                    SELECT date_trunc('day', minute), 0, sum(done), sum(rental), sum(sale), sum(buyback), sum(lookup), sum(other),
                           sum(to_review), sum(to_restrict), sum(to_suspend), sum(to_refer), sum(failed)
                      FROM old GROUP BY 1
                    ON CONFLICT (minute, backend) DO UPDATE SET \(unescaped: Self.addToTally), \(unescaped: Self.addRisesToTally),
                                                              failed = t.failed + excluded.failed
                )
                SELECT count(*) FROM old
                """).one().decode(Int.self, at: 0)
        }
    }
}
