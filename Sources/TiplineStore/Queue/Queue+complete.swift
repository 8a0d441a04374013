import ContactExtraction
import Foundation
public import Postgres
public import TiplineCore

/// A claimed job after the pure domain read its ad.
public struct ProcessedReport: Sendable {
    /// The job.
    public var job: ClaimedJob
    /// What the ad contains.
    public var analysis: Analysis

    /// Pairs a job with its analysis.
    public init(job: ClaimedJob, analysis: Analysis) {
        self.job = job
        self.analysis = analysis
    }
}

/// The outcome written for a report.
public enum Outcome: String, Sendable, Codable {
    case noContact = "no_contact", recorded, escalated
}

/// What a batch completion did.
public struct Completion: Sendable {
    /// Reports completed by this transaction.
    public var completed: [Int64]
    /// Reports whose lease this worker no longer held: nothing of theirs was written.
    public var refused: [Int64]
    /// Escalation rows written.
    public var escalations: Int
}

extension Queue {
    /// Most contacts one completion takes (a batch of the usual ads has about two per report).
    /// A completion holds about a kilobyte per contact while it runs; a batch of ads listing
    /// thousands of numbers each is completed in parts, so that a lane's memory stays bounded
    /// (fifty ads of 5,000 numbers: 320 MB in one completion, 48 MB two at a time).
    public static let contactsPerCompletion = 10_000

    /// `batch` in consecutive parts of at most `limit` contacts (a report with more is a part of
    /// its own); a batch within the limit is one part.
    public static func completionParts(_ batch: [ProcessedReport], limit: Int = contactsPerCompletion) -> [[ProcessedReport]] {
        var parts: [[ProcessedReport]] = []
        var part: [ProcessedReport] = []
        var contacts = 0
        for report in batch {
            let count = report.analysis.contacts.count
            if !part.isEmpty, contacts + count > limit {
                parts.append(part)
                part = []
                contacts = 0
            }
            part.append(report)
            contacts += count
        }
        if !part.isEmpty { parts.append(part) }
        return parts
    }

    /// Applies a batch's outcomes and completes its jobs in one transaction.
    ///
    /// 1. Fence: delete the batch's job rows that this lease still holds (owner and attempt); the
    ///    rest are refused and nothing of theirs is written.
    /// 2. Insert the batch's new contacts in sorted order (concurrent batches cannot deadlock on
    ///    them): nothing here waits for a seller. Part of the fence's statement when the fence kept
    ///    every report.
    /// 3. Lock the offenders owning those contacts in id order, until no concurrent merge moved a
    ///    contact to an offender not yet locked: each locked row says whether a merge absorbed it
    ///    since its contacts were read (then they are read again). Sellers at the top of the ladder
    ///    that the batch does not merge: FOR SHARE, so that their many batches do not queue behind
    ///    each other. The locks and what is read under them (contacts another batch inserted
    ///    first, ids for the new sellers a dry run predicts) go in one round trip. The sellers' past
    ///    reports come with their locks (`SellerRecord`); only a seller whose column does not hold
    ///    them has them read from `reports`, after the last lock round.
    /// 4. Group and level in memory (`SellerBook`), then write new offenders; merges, contact owners
    ///    and levels in one statement; counters and outcomes (with each report's contact ids) in
    ///    another; then escalations. These read nothing back: they are queued and go to the server
    ///    with the `COMMIT`, in one round trip (as the transaction's `BEGIN` goes with the fence).
    ///    Only a batch whose new sellers have no drawn ids yet (it locked nothing) draws them first.
    ///
    /// A batch in which no report has a contact (`--noop`, or ads without any) touches no seller:
    /// its fence, outcomes and counters are one statement, with no transaction block around it.
    ///
    /// `whileLocked` runs once the sellers are locked, inside the transaction (fault injection's
    /// stand-in for a worker frozen there).
    public func complete(
        _ batch: [ProcessedReport], lease: Lease, whileLocked: (@Sendable () -> Void)? = nil
    ) async throws -> Completion {
        try await database.withConnection { connection in
            try Self.complete(batch, lease: lease, using: connection, whileLocked: whileLocked)
        }
    }

    /// `complete(_:lease:)` on a connection of the caller's (the worker's listening session), which
    /// must not be inside a transaction.
    public static func complete(
        _ batch: [ProcessedReport], lease: Lease, using connection: Connection, whileLocked: (@Sendable () -> Void)? = nil
    ) throws -> Completion {
        if batch.allSatisfy({ $0.analysis.contacts.isEmpty }) {
            return try completeWithoutContacts(batch, lease: lease, on: connection)
        }
        return try connection.transaction { tx in try complete(batch, lease: lease, on: tx, whileLocked: whileLocked) }
    }

    /// Of the reports a completion `refused`, those already done at the attempt `batch` made. A
    /// completion whose connection broke during its `COMMIT` may have committed: its retry then
    /// finds its own jobs fenced. They are this worker's work, not a lost lease: any other worker
    /// completes a report only at a later attempt (every claim counts one).
    public func completedEarlier(_ batch: [ProcessedReport], refused: [Int64]) async throws -> [Int64] {
        let attempts = Dictionary(batch.map { ($0.job.reportID, $0.job.attempt) }, uniquingKeysWith: max)
        let ids = refused.filter { attempts[$0] != nil }
        guard !ids.isEmpty else { return [] }
        let done = Set(try await database.query("""
            SELECT r.id FROM unnest(\(ids)::bigint[], \(ids.map { attempts[$0]! })::int[]) AS b (id, attempt)
              JOIN reports r ON r.id = b.id
             WHERE r.state = 'done' AND r.attempts = b.attempt
            """).map { try $0.decode(Int64.self, at: 0) })
        return ids.filter { done.contains($0) }
    }

    /// The whole completion of a batch without contacts, as one statement (atomic on its own): the
    /// fence deletes the job rows this lease still holds, and only those reports get their outcome
    /// (`no_contact`) and count in this minute's tally.
    static func completeWithoutContacts(_ batch: [ProcessedReport], lease: Lease, on connection: Connection) throws -> Completion {
        let ids = batch.map(\.job.reportID)
        let completed = try connection.queryPrepared(completionWithoutContacts(batch, lease: lease)).map { try $0.decode(Int64.self, at: 0) }
        let done = Set(completed)
        return Completion(completed: ids.filter { done.contains($0) }, refused: ids.filter { !done.contains($0) }, escalations: 0)
    }

    /// `completeWithoutContacts`'s statement; its one column: the reports completed.
    static func completionWithoutContacts(_ batch: [ProcessedReport], lease: Lease) -> Query {
        """
            WITH gone AS (
                \(fragment: fence(batch, lease: lease))
            ), fenced AS (
                SELECT g.report_id, g.attempt, (\(batch.map(\.analysis.category.rawValue))::text[])[g.n] AS category FROM gone g
            ), tallied AS (
                INSERT INTO report_tallies AS t (minute, backend, done, rental, sale, buyback, lookup, other)
                SELECT date_trunc('minute', now()), pg_backend_pid(), count(*),
                       count(*) FILTER (WHERE category = 'rental'), count(*) FILTER (WHERE category = 'sale'),
                       count(*) FILTER (WHERE category = 'buyback'), count(*) FILTER (WHERE category = 'lookup'),
                       count(*) FILTER (WHERE category = 'other')
                  FROM fenced HAVING count(*) > 0
                ON CONFLICT (minute, backend) DO UPDATE SET \(unescaped: Self.addToTally)
            )
            UPDATE reports r
               SET state = 'done', outcome = 'no_contact', category = f.category, offender_id = NULL, level = NULL,
                   attempts = f.attempt, last_error = NULL, processed_at = now()
              FROM fenced f
             WHERE r.id = f.report_id
            RETURNING r.id
            """
    }

    /// The fence: deletes the batch's job rows that this lease still holds (owner and attempt); columns:
    /// report_id, attempt, and the report's position in the batch (from 1). The deletion locks them
    /// until commit, and a rollback brings them back.
    ///
    /// Each job is found by key (`report_id = ANY`, its attempt by its position in the arrays): a join
    /// with `unnest` was planned with the lease index outside and the unnest rescanned once per
    /// running job (every lane's), 1.2 of a fence's 1.6 ms. For the same reason the fence does not
    /// name `state = 'running'`: that made `jobs_lease_idx` (every running job of every worker, and
    /// their dead entries) usable, and a plan from statistics taken while nothing ran chose it: about
    /// 5,800 entries walked per fence of fifty with sixteen lanes. The lease columns say the same
    /// (`Queue.stillHeld`).
    static func fence(_ batch: [ProcessedReport], lease: Lease) -> Query {
        let ids = batch.map(\.job.reportID)
        return """
            DELETE FROM jobs j
             WHERE j.report_id = ANY(\(ids)::bigint[])
               AND j.attempt = (\(batch.map { Int32($0.job.attempt) })::int[])[array_position(\(ids)::bigint[], j.report_id)]
               AND \(fragment: Queue.stillHeld(by: lease.owner.uuidString, alias: "j"))
            RETURNING j.report_id, j.attempt, array_position(\(ids)::bigint[], j.report_id) AS n
            """
    }

    static func complete(
        _ batch: [ProcessedReport], lease: Lease, on tx: Connection, whileLocked: (@Sendable () -> Void)? = nil
    ) throws -> Completion {
        // 1. Fence: delete the job rows this lease still holds (owner and attempt). The deletion
        //    locks them until commit, and a rollback brings them back. The ladder in force (the
        //    newest policy row) comes with them, and so do the stored rows of the batch's contacts
        //    (read without a lock: step 3 checks each owner as it locks it).
        let asked = Array(Set(batch.flatMap(\.analysis.contacts))).sorted()
        let rows = try tx.queryPrepared("""
            WITH fenced AS (
                \(fragment: fence(batch, lease: lease))
            ), ladder AS MATERIALIZED (
                SELECT * FROM ladder_policies ORDER BY id DESC LIMIT 1
            )
            SELECT l.window_days, l.review, l.restrict_at, l.suspend, l.refer, fenced.report_id,
                   NULL::bigint, NULL::bigint, NULL::bigint, NULL::text
              FROM fenced, ladder l
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, found.* FROM (\(fragment: StoredContacts.lookup(asked))) found
            """)
        // Rows of two kinds: a fenced report (column 5), a stored contact (its position, column 6).
        var ownedRows: [Row] = [], foundRows: [Row] = []
        for row in rows {
            if try row.decodeIfPresent(Int64.self, at: 5) != nil { ownedRows.append(row) } else { foundRows.append(row) }
        }
        let owned = Set(try ownedRows.map { try $0.decode(Int64.self, at: 5) })
        let mine = batch.filter { owned.contains($0.job.reportID) }
        let refused = batch.map(\.job.reportID).filter { !owned.contains($0) }
        guard let first = ownedRows.first, !mine.isEmpty else { return Completion(completed: [], refused: refused, escalations: 0) }

        let ladder = try Ladder(row: first)
        let contacts = Array(Set(mine.flatMap(\.analysis.contacts))).sorted()
        var stored = try StoredContacts(rows: foundRows, of: asked, from: 6)
        if !refused.isEmpty { stored.keep(Set(contacts)) }
        // 2, 3. The contacts not stored yet are inserted with the owners a dry run gives them, then
        //    the offenders are locked, and what the book needs is read under the locks.
        let loaded = try loadSellerBook(for: mine, contacts: contacts, stored: stored, ladder: ladder, on: tx)
        var book = loaded.book
        let locked = loaded.locked
        whileLocked?()

        // 4. Group and level in batch order.
        var placements: [Int64: SellerBook.Placement] = [:]
        var rises: [(SellerBook.Rise, Int64)] = []
        for report in mine {
            guard let placement = book.add(
                contacts: report.analysis.contacts, at: report.job.reportedAt, reporter: report.job.reporterHash)
            else { continue }
            placements[report.job.reportID] = placement
            if let rise = placement.rise { rises.append((rise, report.job.reportID)) }
        }
        let realID = try allocateOffenders(book, drawn: loaded.drawn, on: tx)
        func final(_ id: Int64) -> Int64 { realID(book.survivor(of: id)) }

        var levels: [Int64: Level] = [:]
        for placement in placements.values {
            let survivor = book.survivor(of: placement.offender)
            levels[realID(survivor)] = book.level(of: survivor)
        }
        // Each stored seller that got reports has its history column written again (`SellerRecord`),
        // unless that would store what it holds: a kept one that absorbed no stored offender gets this
        // batch's reports of it appended; one whose every report the book holds (and every report
        // of each offender it absorbed) is written whole; any other `overflow`; none at the top.
        var added: [Int64: [SellerBook.Event]] = [:]
        for report in mine {
            guard let placement = placements[report.job.reportID] else { continue }
            added[book.survivor(of: placement.offender), default: []].append((report.job.reportedAt, report.job.reporterHash))
        }
        var absorbedStored: [Int64: [Int64]] = [:]
        for merge in book.merges where merge.absorbed < SellerBook.firstProvisionalID {
            absorbedStored[book.survivor(of: merge.absorbed), default: []].append(merge.absorbed)
        }
        var histories: [Int64: (history: Data?, append: Bool)] = [:]
        for (survivor, reports) in added where survivor < SellerBook.firstProvisionalID {
            let record = locked.records[survivor] ?? .unknown
            let absorbedHere = absorbedStored[survivor] ?? []
            let write: (history: Data?, append: Bool)
            if book.level(of: survivor) == Level.top {
                write = (nil, false)
            } else if let count = record.count, absorbedHere.isEmpty {
                let entries = count + reports.count <= SellerRecord.capacity ? SellerRecord.entries(reports) : nil
                write = entries.map { ($0, true) } ?? (SellerRecord.overflowBytes, false)
            } else if loaded.complete.contains(survivor) && absorbedHere.allSatisfy(loaded.complete.contains) {
                write = (SellerRecord.encode(book.events(of: survivor)), false)
            } else {
                write = (SellerRecord.overflowBytes, false)
            }
            if write.append || write.history != record.stored { histories[survivor] = write }
        }
        let outcomes = mine.map { report -> Outcome in
            guard let placement = placements[report.job.reportID] else { return .noContact }
            return placement.rise == nil ? .recorded : .escalated
        }
        // Merges, contact owners and levels in one statement (when any changed from what was read
        // under the locks; new offenders were stored with their levels), then the tallies and the
        // outcomes in another. The parts of one statement all read the same snapshot, so they
        // touch different rows: a merge moves only contacts no other part writes, only survivors get
        // levels there (an absorbed seller gets the level it reached before the merge with its
        // `merged_into`, which its last escalation row names). A merge leaves the absorbed offender's reports as they are (they resolve through
        // `merged_into`): rewriting them cost a report row and its index entries per past report of
        // every absorbed seller, twice the outcome writes once the database held 900,000 reports.
        let absorbed = book.merges.map(\.absorbed).filter { $0 < SellerBook.firstProvisionalID }
        let survivors = absorbed.map { final($0) }
        // The level an absorbed seller rose to in this batch before its merge, where it rose (its
        // row is locked FOR UPDATE: the level read under the lock is the one stored).
        let absorbedRises = absorbed.map { id -> String? in
            let own = book.ownLevel(of: id)
            return own > (locked.levels[id] ?? Level.none) ? own.rawValue : nil
        }
        // A merge moves every contact of an absorbed seller to its survivor (`moved_contacts` below),
        // this batch's too: only a contact going elsewhere is written by id (`owned`), and kept out
        // of the move, since one statement must not update a row twice. (Keeping all the batch's
        // contacts out of the move by a `NOT id = ANY` of them compared each moved row with each
        // of them: a batch of ads listing thousands of numbers, absorbing a seller with as many,
        // ran for minutes.)
        let survivorOf = Dictionary(zip(absorbed, survivors)) { first, _ in first }
        let rehomed = contacts.filter { contact in
            let owner = final(book.owners[contact]!)
            let stored = locked.storedOwner(of: contact)
            return owner != stored && stored.flatMap { survivorOf[$0] } != owner
        }
        let rehomedIDs = try rehomed.map { try locked.id(of: $0) }
        let owners = rehomed.map { final(book.owners[$0]!) }
        let levelIDs = levels.keys.filter { id in locked.levels[id].map { $0 != levels[id] } ?? false }
        let rewrittenIDs = Set(levelIDs).union(histories.keys).sorted()
        let reportIDs = mine.map(\.job.reportID)
        if !absorbed.isEmpty {
            // The merge below re-points the offenders merged earlier into each absorbed seller (their
            // `merged_into` names it), and no lock round took them. Another batch may hold one: it
            // read a contact of that offender before the earlier merge, locked it, and may now be
            // waiting for a seller this batch holds. So they are locked first, after every other lock
            // and out of id order, without waiting: a lock held elsewhere fails the completion at once
            // (lock_not_available) and it starts over, instead of both waiting out a deadlock.
            tx.queuePrepared("""
                SELECT o.id FROM offenders o WHERE o.merged_into = ANY(\(absorbed)::bigint[]) FOR UPDATE NOWAIT
                """)
        }
        if !absorbed.isEmpty || !rehomedIDs.isEmpty || !rewrittenIDs.isEmpty {
            tx.queuePrepared("""
                WITH merged AS (
                    UPDATE offenders o SET merged_into = m.survivor, updated_at = now(), history = NULL,
                                           level = CASE WHEN o.id = m.absorbed THEN coalesce(m.level, o.level) ELSE o.level END
                      FROM unnest(\(absorbed)::bigint[], \(survivors)::bigint[], \(absorbedRises)::text[])
                           AS m (absorbed, survivor, level)
                     WHERE o.id = m.absorbed OR o.merged_into = m.absorbed
                ), moved_contacts AS (
                    UPDATE contacts c SET offender_id = m.survivor
                      FROM unnest(\(absorbed)::bigint[], \(survivors)::bigint[]) AS m (absorbed, survivor)
                     WHERE c.offender_id = m.absorbed
                       AND c.id NOT IN (SELECT unnest(\(rehomedIDs)::bigint[]))  -- hashed once, not a scan per row
                ), owned AS (
                    UPDATE contacts c SET offender_id = v.offender_id
                      FROM unnest(\(rehomedIDs)::bigint[], \(owners)::bigint[]) AS v (id, offender_id)
                     WHERE c.id = v.id AND c.offender_id IS DISTINCT FROM v.offender_id
                )
                UPDATE offenders o
                   SET level = coalesce(v.level, o.level),
                       updated_at = CASE WHEN v.level <> o.level THEN now() ELSE o.updated_at END,
                       history = CASE v.write WHEN 'set' THEN v.history WHEN 'append' THEN o.history || v.history ELSE o.history END
                  FROM unnest(\(rewrittenIDs)::bigint[], \(rewrittenIDs.map { levels[$0]?.rawValue })::text[],
                              \(rewrittenIDs.map { histories[$0]?.history })::bytea[],
                              \(rewrittenIDs.map { histories[$0].map { $0.append ? "append" : "set" } })::text[])
                       AS v (id, level, history, write)
                 WHERE o.id = v.id AND (v.level <> o.level OR v.write IS NOT NULL)
                """)
        }
        // This minute's counters of this session (`tipline status` reads them instead of counting
        // reports and escalations).
        var tally: [TiplineCore.Category: Int] = [:]
        for report in mine { tally[report.analysis.category, default: 0] += 1 }
        var risen: [Level: Int] = [:]
        for (rise, _) in rises { risen[rise.to, default: 0] += 1 }
        // Each report's contact ids, ascending, as a slice [first, first + count) of one flat array.
        var links: [Int64] = []
        var linkStarts: [Int32] = []
        var linkCounts: [Int32] = []
        for report in mine {
            let ids = Set(try report.analysis.contacts.map { try locked.id(of: $0) }).sorted()
            linkStarts.append(Int32(links.count + 1))
            linkCounts.append(Int32(ids.count))
            links += ids
        }
        tx.queuePrepared("""
            WITH tallied AS (
                INSERT INTO report_tallies AS t (minute, backend, done, rental, sale, buyback, lookup, other,
                                                 to_review, to_restrict, to_suspend, to_refer)
                VALUES (date_trunc('minute', now()), pg_backend_pid(), \(mine.count), \(tally[.rental, default: 0]),
                        \(tally[.sale, default: 0]), \(tally[.buyback, default: 0]), \(tally[.lookup, default: 0]),
                        \(tally[.other, default: 0]), \(risen[.review, default: 0]), \(risen[.restrict, default: 0]),
                        \(risen[.suspend, default: 0]), \(risen[.refer, default: 0]))
                ON CONFLICT (minute, backend) DO UPDATE SET \(unescaped: Self.addToTally), \(unescaped: Self.addRisesToTally)
            )
            UPDATE reports r
               SET state = 'done', outcome = v.outcome, category = v.category, offender_id = v.offender_id,
                   level = v.level, attempts = v.attempt, last_error = NULL, processed_at = now(),
                   contact_ids = CASE WHEN v.links > 0 THEN (\(links)::bigint[])[v.first : v.first + v.links - 1] END
              FROM unnest(\(reportIDs)::bigint[], \(outcomes.map(\.rawValue))::text[],
                          \(mine.map(\.analysis.category.rawValue))::text[],
                          \(mine.map { placements[$0.job.reportID].map { final($0.offender) } })::bigint[],
                          \(mine.map { placements[$0.job.reportID]?.level.rawValue })::text[],
                          \(mine.map { Int32($0.job.attempt) })::int[], \(linkStarts)::int[], \(linkCounts)::int[])
                   AS v (id, outcome, category, offender_id, level, attempt, first, links)
             WHERE r.id = v.id
            """)
        // Escalation rows are an outbox: they keep the offender id they were written for (merged ids resolve).
        if !rises.isEmpty {
            // Last, under the outbox lock held to commit: escalation ids then commit in order, so a
            // consumer reading `id > cursor` never skips a row that commits late. Every row inserted
            // is joined with the lock's row, so the lock is held before the first id is drawn. Its
            // time is the insert's, not the transaction's start: a transaction that began earlier
            // and waited for the lock must not show its rise before those written while it waited.
            tx.queuePrepared("""
                WITH outbox AS MATERIALIZED (
                    SELECT pg_advisory_xact_lock(\(EscalationFeed.outboxLock))
                ), written AS (
                    INSERT INTO escalations (offender_id, from_level, to_level, report_id, created_at)
                    SELECT e.*, clock_timestamp() FROM outbox,
                           unnest(\(rises.map { realID($0.0.offender) })::bigint[], \(rises.map { $0.0.from.rawValue })::text[],
                                  \(rises.map { $0.0.to.rawValue })::text[], \(rises.map(\.1))::bigint[]) AS e
                    RETURNING id
                )
                SELECT pg_notify('tipline_escalations', max(id)::text) FROM written
                """)
        }
        return Completion(completed: mine.map(\.job.reportID), refused: refused, escalations: rises.count)
    }

    /// Steps 2 and 3: store the new contacts, lock the contacts' offenders and load what the book
    /// needs. Returns the book, the contacts as stored and read under the locks, and offender ids
    /// drawn for the book's new sellers (as many as the dry run that stored the new contacts created,
    /// plus any later locking round's dry run added: usually exactly what the book needs;
    /// `allocateOffenders` draws any missing, and ids not used are gaps in the sequence), and the
    /// stored sellers whose every report the book was given (`SellerHistory.complete`).
    private static func loadSellerBook(
        for batch: [ProcessedReport], contacts: [Contact], stored first: StoredContacts, ladder: Ladder, on tx: Connection
    ) throws -> (book: SellerBook, locked: StoredContacts, drawn: [Int64], complete: Set<Int64>) {
        // Contacts not stored yet are inserted in the first round, before any offender lock is
        // taken: an insert may wait for a concurrent batch that inserted the same contact, so it
        // must not hold a lock that batch could be waiting for (and the sorted order keeps inserts
        // from waiting on each other in a cycle). Each gets the owner the first dry run gives it,
        // for a new seller an id the insert draws, so that it is written once: inserting it without
        // an owner and setting one later cost a second row version and its index entries per contact.
        // One another batch inserted first is read back, by key, with its owner, under the locks.
        var fresh = contacts.filter { first.ids[$0] == nil }
        // Lock the owning offenders until no concurrent merge moved a contact to an offender not yet
        // locked. The owners read before a lock need no second read: a contact changes owner only
        // when a merge absorbs that owner (and marks it merged in the same transaction), so the locked
        // row, as the lock returns it, says whether it still owns its contacts, and its level now.
        // Only when a merge did absorb one are the contacts read again, by id (re-reading every
        // contact under the locks cost a third of the statement after them). A seller at the top of
        // the ladder that this batch does not absorb into another is only read: FOR SHARE keeps
        // merges and level changes out until commit, yet lets every other batch of the same (often
        // the busiest) seller go ahead at once. Everything else is locked FOR UPDATE, in the same
        // statement and the same pass in id order.
        // Past reports matter only where they share a window with this batch's reports: windows
        // elsewhere are already reflected in the stored levels, which never go down. Sellers that
        // merge in this batch form windows across both histories, so theirs are read whole. A dry
        // run of the batch (no history needed for grouping) tells which ones merge, and which of
        // the batch's reports land on each of the others: their windows are the span read for it.
        // Sellers already at the top of the ladder need no history at all: nothing can raise them.
        var held: [Int64: Bool] = [:]  // offender id -> locked FOR UPDATE (false: FOR SHARE)
        var current = first
        var drawn: [Int64] = []
        for _ in 0..<50 {
            let levels = current.levels
            var dry = SellerBook.grouping(ladder: ladder, owners: current.owners, levels: levels)
            var spans: [Int64: SellerHistory.Span] = [:]
            for report in batch {
                let time = report.job.reportedAt
                guard let placement = dry.add(contacts: report.analysis.contacts, at: time, reporter: report.job.reporterHash)
                else { continue }
                let window = SellerHistory.Span(around: time, window: ladder.windowSeconds)
                spans[placement.offender] = spans[placement.offender].map { $0.union(window) } ?? window
            }
            let merging = Set(dry.merges.flatMap { [$0.absorbed, $0.into] }).intersection(levels.keys)
            let climbing = Set(levels.filter { $0.value < Level.top }.keys)
            let windowed = climbing.subtracting(merging).sorted()
            let history = SellerHistory(
                whole: merging.intersection(climbing).sorted(), windowed: windowed,
                // Every stored seller that does not merge holds one of the batch's reports (the one
                // naming its contact); whole, should that ever not be so.
                spans: windowed.map { spans[$0] ?? SellerHistory.Span(from: .distantPast, until: .distantFuture) })
            // Only an absorbed offender's row changes in a merge: a survivor at the top is just read.
            let absorbed = Set(dry.merges.map(\.absorbed))
            let exclusive = levels.keys.filter { levels[$0]! < Level.top || absorbed.contains($0) }
            let shared = levels.keys.filter { levels[$0]! == Level.top && !absorbed.contains($0) }
            let toUpdate = exclusive.filter { held[$0] != true }.sorted()
            let toShare = shared.filter { held[$0] == nil }.sorted()
            // The owners above were read after every lock this batch holds: if they need no other
            // lock, they are final (a merge moves contacts and marks the absorbed offender in one
            // transaction, and none can touch an offender this batch holds). Their histories come
            // from their columns as locked; only sellers whose column is not kept cost a statement
            // (a round trip), whose snapshot is taken under the locks. In the benchmarks' mix none
            // is, even after a million reports: a seller reported more than 40 times is at the top.
            if toUpdate.isEmpty, toShare.isEmpty, fresh.isEmpty {
                let kept = try history.kept(in: current.records)
                let unkept = history.unkept(given: current.records)
                var events = unkept.isEmpty ? [:] : try unkept.read(on: tx)
                events.merge(kept) { read, _ in read }
                // A seller whose level an administrator set has its reports read whole, and every
                // window read again: its stored level may not reflect them.
                let book = SellerBook(ladder: ladder, owners: current.owners, levels: current.levels, events: events,
                                      recount: history.recount(given: current.records))
                return (book, current, drawn, history.complete(given: current.records))
            }
            var statements: [Query] = []
            if !fresh.isEmpty {
                statements.append(StoredContacts.insert(fresh, owners: fresh.map { contact in
                    let owner = dry.survivor(of: dry.owners[contact]!)
                    return owner < SellerBook.firstProvisionalID ? .stored(owner) : .created(dry.created.firstIndex(of: owner)!)
                }, creating: dry.created.count))
            }
            // One statement, one pass in id order, each row in its own mode: shared locks taken
            // first and exclusive ones after could close a cycle with a batch doing the opposite.
            // A later round would lock out of that order, so it does not wait: a lock held elsewhere
            // fails it at once (lock_not_available) and the whole completion starts over, reading
            // the owners afresh, instead of waiting out a deadlock. (So does the lock of the absorbed
            // sellers' earlier merges, taken with the writes.)
            // Each locked row comes back as the lock found it: the latest version, after waiting.
            let ids = (toShare + toUpdate).sorted()
            if !ids.isEmpty {
                let forUpdate = ids.map { toUpdate.contains($0) }
                let wait = held.isEmpty ? "" : " NOWAIT"
                statements.append("""
                    SELECT x.id, coalesce(s.id, u.id), coalesce(s.merged_into, u.merged_into), coalesce(s.level, u.level), u.history
                      FROM unnest(\(ids)::bigint[], \(forUpdate)::bool[]) AS x (id, exclusive)
                      LEFT JOIN LATERAL (SELECT o.id, o.merged_into, o.level FROM offenders o WHERE o.id = x.id AND NOT x.exclusive
                                         FOR SHARE\(unescaped: wait)) s ON true
                      LEFT JOIN LATERAL (SELECT o.id, o.merged_into, o.level, o.history FROM offenders o WHERE o.id = x.id AND x.exclusive
                                         FOR UPDATE\(unescaped: wait)) u ON true
                    """)
                for (id, exclusively) in zip(ids, forUpdate) { held[id] = exclusively }
            }
            // After the locks (a statement of its own, whose snapshot is taken once they are held):
            // contacts another batch inserted first (by key), any contact read without an owner (by
            // id), and ids for the sellers this dry run creates beyond those drawn already: unless
            // a concurrent batch changed the owners, the book made from them creates the same ones.
            // A contact without an owner is read again only in a round that locks or inserts
            // something, and no lock covers it: every contact is inserted with its owner, so none
            // is committed without one. A round with none of these sends no such statement.
            let more = fresh.isEmpty ? dry.created.count - drawn.count : 0
            let unowned = current.unowned
            let rereads = !unowned.isEmpty || !fresh.isEmpty || more > 0
            if rereads { statements.append(current.reread(unowned, adding: fresh, drawing: more)) }
            let results = try tx.queryPrepared(statements)
            var next = current
            if !fresh.isEmpty {
                drawn += try next.addInserted(results[0], of: fresh)
            }
            let moved = ids.isEmpty ? false : try !next.confirm(locked: results[fresh.isEmpty ? 0 : 1])
            if rereads {
                let reread = try next.reread(results[results.count - 1], adding: fresh, replacing: false)
                next = reread.contacts
                drawn += reread.drawn
            }
            current = next
            fresh = []
            if moved {
                // A merge moved some contacts since they were read: read them all again, by id.
                let rows = try tx.queryPrepared(current.reread(current.readIDs, adding: [], drawing: 0))
                current = try current.reread(rows, adding: [], replacing: true).contacts
            }
        }
        // Owners still moving after 50 rounds: start the completion over (a transient error).
        throw PostgresError(
            code: .queryFailed, sqlState: .serializationFailure,
            message: "the batch's sellers kept changing under concurrent merges for 50 lock rounds; the completion starts over")
    }

    /// Gives the batch's provisional offenders real ids, in creation order (so lower stays older),
    /// and queues their insert. Ids drawn earlier (`drawn`) are used first; more are drawn if needed.
    private static func allocateOffenders(_ book: SellerBook, drawn: [Int64], on tx: Connection) throws -> @Sendable (Int64) -> Int64 {
        let provisional = book.created
        guard !provisional.isEmpty else { return { $0 } }
        var ids = drawn
        if ids.count < provisional.count {
            ids += try tx.queryPrepared("""
                SELECT nextval('offenders_id_seq') FROM generate_series(1, \(provisional.count - ids.count))
                """).map { try $0.decode(Int64.self, at: 0) }
        }
        ids = Array(ids.sorted().prefix(provisional.count))
        let mapping = Dictionary(uniqueKeysWithValues: zip(provisional, ids))
        // Offenders absorbed within the batch are stored too (merged), so that escalation rows
        // written for them and their ids keep resolving. A new seller's history is this batch's
        // reports of it (`SellerRecord`); none is kept at the top of the ladder.
        tx.queuePrepared("""
            INSERT INTO offenders (id, level, merged_into, history)
            SELECT * FROM unnest(\(ids)::bigint[], \(provisional.map { book.ownLevel(of: $0).rawValue })::text[],
                                 \(provisional.map { id -> Int64? in
                                     let survivor = book.survivor(of: id)
                                     return survivor == id ? nil : mapping[survivor] ?? survivor
                                 })::bigint[],
                                 \(provisional.map { id -> Data? in
                                     book.survivor(of: id) == id && book.level(of: id) < Level.top ? SellerRecord.encode(book.events(of: id)) : nil
                                 })::bytea[])
            """)
        return { mapping[$0] ?? $0 }
    }
}

/// The batch's contacts as stored: ids, and the offenders owning them with their levels.
///
/// Every statement here looks rows up by key, one at a time (a lateral subquery, a scalar subquery,
/// `= ANY`): a plan cached while the tables were small must never turn into a scan when they grow.
struct StoredContacts {
    /// The owner a new contact is inserted with: a stored offender, or the new seller at this
    /// position of the dry run's `created` (its id drawn by the insert).
    enum NewOwner {
        case stored(Int64)
        case created(Int)
    }

    /// Each contact's row id.
    var ids: [Contact: Int64] = [:]
    /// The owner of each contact that has one, except those this batch inserted.
    var owners: [Contact: Int64] = [:]
    /// Each owner's level.
    var levels: [Int64: Level] = [:]
    /// The contacts this batch inserted, with the owners it gave them (a new seller's offender row
    /// is not stored until the commit). The book treats them as new: a contact of nobody's yet.
    var inserted: [Contact: Int64] = [:]
    /// The history column of each offender locked (as locked: a share-locked one's reads `unknown`).
    var records: [Int64: SellerRecord] = [:]

    /// Nothing read yet.
    init() {}

    /// Looks the contacts' rows up; columns: the contact's position in `contacts` (from 1), id,
    /// offender_id, and that offender's level.
    static func lookup(_ contacts: [Contact]) -> Query {
        """
        SELECT t.n, c.id, c.offender_id, (SELECT o.level FROM offenders o WHERE o.id = c.offender_id)
          FROM unnest(\(contacts.map(\.kind.rawValue))::text[], \(contacts.map(\.value))::text[]) WITH ORDINALITY AS t (kind, value, n)
         CROSS JOIN LATERAL (SELECT id, offender_id FROM contacts c WHERE c.kind = t.kind AND c.value = t.value OFFSET 0) c
        """
    }

    /// Inserts those of `contacts` that no other row holds yet, each with its owner, in sorted
    /// order (concurrent batches cannot deadlock on them), drawing `creating` new offender ids in
    /// ascending order for the owners given as `.created`. Columns: a row inserted (id, key
    /// `kind:value`, its owner), or an id drawn (first two NULL), for `addInserted`.
    static func insert(_ contacts: [Contact], owners: [NewOwner], creating: Int) -> Query {
        let stored = owners.map { owner -> Int64? in if case .stored(let id) = owner { id } else { nil } }
        let created = owners.map { owner -> Int32? in if case .created(let index) = owner { Int32(index + 1) } else { nil } }
        return """
            WITH drawn AS MATERIALIZED (
                SELECT g.k, nextval('offenders_id_seq') AS id FROM generate_series(1, \(creating)) AS g (k)
            ), inserted AS (
                INSERT INTO contacts (kind, value, offender_id)
                SELECT a.kind, a.value, coalesce(a.owner, (SELECT d.id FROM drawn d WHERE d.k = a.created))
                  FROM unnest(\(contacts.map(\.kind.rawValue))::text[], \(contacts.map(\.value))::text[],
                              \(stored)::bigint[], \(created)::int[]) AS a (kind, value, owner, created)
                 ORDER BY a.kind, a.value
                ON CONFLICT (kind, value) DO NOTHING
                RETURNING id, kind || ':' || value AS key, offender_id
            )
            SELECT i.id, i.key, i.offender_id FROM inserted i
            UNION ALL
            SELECT NULL, NULL, d.id FROM drawn d
            """
    }

    /// Adds the rows `insert(contacts, ...)` inserted, and returns the ids it drew, ascending.
    mutating func addInserted(_ rows: some Sequence<Row>, of contacts: [Contact]) throws -> [Int64] {
        let byKey = Dictionary(uniqueKeysWithValues: contacts.map { ("\($0.kind.rawValue):\($0.value)", $0) })
        var drawn: [Int64] = []
        for row in rows {
            guard let key = try row.decodeIfPresent(String.self, at: 1) else {
                drawn.append(try row.decode(at: 2))
                continue
            }
            guard let contact = byKey[key] else { continue }
            ids[contact] = try row.decode(at: 0)
            inserted[contact] = try row.decode(at: 2)
        }
        return drawn.sorted()
    }

    /// What `lookup(contacts)` returned, its columns starting at `column`.
    init(rows: some Sequence<Row>, of contacts: [Contact], from column: Int) throws {
        for row in rows {
            try add(contacts[try row.decode(Int.self, at: column) - 1], row, from: column)
        }
    }

    /// Forgets every contact but `contacts` (those of reports a fence refused).
    mutating func keep(_ contacts: Set<Contact>) {
        ids = ids.filter { contacts.contains($0.key) }
        owners = owners.filter { contacts.contains($0.key) }
        levels = levels.filter { level in owners.values.contains(level.key) }
    }

    /// The row id of a contact that was read.
    func id(of contact: Contact) throws -> Int64 {
        guard let id = ids[contact] else {
            throw TiplineError(.notFound, "contact \(contact.kind.rawValue):\(contact.value) is not stored after its insert")
        }
        return id
    }

    /// The owner stored for `contact` when it was read or inserted.
    func storedOwner(of contact: Contact) -> Int64? {
        owners[contact] ?? inserted[contact]
    }

    /// The ids of the contacts read (not those this batch inserted: their owners are the batch's own).
    var readIDs: [Int64] { ids.filter { inserted[$0.key] == nil }.map(\.value) }

    /// The ids of the contacts read without an owner.
    var unowned: [Int64] { ids.filter { inserted[$0.key] == nil && owners[$0.key] == nil }.map(\.value) }

    /// Takes in the offenders a lock statement returned (id, id if stored, merged_into, level,
    /// history if locked FOR UPDATE): their levels and records now. False when one was merged into
    /// another (its contacts may have moved since they were read) or is not stored.
    mutating func confirm(locked rows: some Sequence<Row>) throws -> Bool {
        var unchanged = true
        for row in rows {
            guard try row.decodeIfPresent(Int64.self, at: 1) != nil, try row.decodeIfPresent(Int64.self, at: 2) == nil else {
                unchanged = false
                continue
            }
            let id = try row.decode(Int64.self, at: 0)
            levels[id] = Level(rawValue: try row.decode(String.self, at: 3)) ?? Level.none
            records[id] = SellerRecord(bytes: try row.decodeIfPresent(Data.self, at: 4))
        }
        return unchanged
    }

    /// Reads the rows of the contacts `readIDs` names again, by id (and `adding`, not stored when
    /// last read, by key), and in the same statement draws `draw` new offender ids.
    func reread(_ readIDs: [Int64], adding fresh: [Contact], drawing draw: Int) -> Query {
        """
        SELECT c.id, c.id, c.offender_id, (SELECT o.level FROM offenders o WHERE o.id = c.offender_id), NULL::bigint
          FROM contacts c WHERE c.id = ANY(\(readIDs)::bigint[])
        UNION ALL
        SELECT f.id, f.id, f.offender_id, f.level, f.n FROM (\(fragment: Self.lookup(fresh))) f (n, id, offender_id, level)
        UNION ALL
        SELECT NULL, nextval('offenders_id_seq'), NULL, NULL, NULL FROM generate_series(1, \(max(draw, 0)))
        """
    }

    /// What `reread(_:adding:drawing:)` returned, read after `addInserted` recorded this batch's
    /// inserts: these rows added to the contacts as read before, or `replacing` them (all read
    /// again), and the offender ids drawn.
    func reread(
        _ rows: some Sequence<Row>, adding fresh: [Contact], replacing: Bool
    ) throws -> (contacts: StoredContacts, drawn: [Int64]) {
        let byID = Dictionary(uniqueKeysWithValues: ids.map { ($0.value, $0.key) })
        var stored = self
        if replacing {
            stored = StoredContacts()
            stored.inserted = inserted
            stored.records = records
            for contact in inserted.keys { stored.ids[contact] = ids[contact] }
        }
        var drawn: [Int64] = []
        // Rows of three kinds: a contact read by id (its id in column 0) or by key (also its
        // position in `fresh`, column 4), a drawn offender id (column 1 only).
        for row in rows {
            if let id = try row.decodeIfPresent(Int64.self, at: 0) {
                if let n = try row.decodeIfPresent(Int.self, at: 4) {
                    let contact = fresh[n - 1]
                    if inserted[contact] == nil { try stored.add(contact, row, from: 0) }
                } else {
                    try stored.add(byID[id]!, row, from: 0)
                }
            } else {
                drawn.append(try row.decode(Int64.self, at: 1))
            }
        }
        return (stored, drawn)
    }

    /// Columns from `column` on: (key), id, offender_id, level.
    private mutating func add(_ contact: Contact, _ row: Row, from column: Int) throws {
        ids[contact] = try row.decode(Int64.self, at: column + 1)
        guard let owner = try row.decodeIfPresent(Int64.self, at: column + 2) else { return }
        owners[contact] = owner
        // `offenders.level` is never NULL: a NULL here is an owner that is not stored. No foreign
        // key refuses that since migration 0009; writing its id on would spread it, so the batch fails.
        guard let level = try row.decodeIfPresent(String.self, at: column + 3) else {
            throw TiplineError(.notFound, "contact \(contact.kind.rawValue):\(contact.value) names seller \(owner), which is not stored")
        }
        levels[owner] = Level(rawValue: level) ?? Level.none
    }
}

/// Which sellers' past reports a batch needs to level them (step 3).
///
/// A seller's reports are those naming it in `reports.offender_id` and those naming an offender
/// merged into it (`offenders.merged_into`, which always names the final survivor): a merge marks
/// the absorbed offender and moves its contacts, but leaves its reports where they are.
struct SellerHistory {
    /// The report times that the windows around some of the batch's reports can reach.
    struct Span {
        var from: Date
        var until: Date

        init(from: Date, until: Date) {
            self.from = from
            self.until = until
        }

        /// Every window (`window` seconds long) that holds a report made at `time`.
        init(around time: Date, window: TimeInterval) {
            self.init(from: time.addingTimeInterval(-window), until: time.addingTimeInterval(window))
        }

        /// The smallest span holding both.
        func union(_ other: Span) -> Span {
            Span(from: min(from, other.from), until: max(until, other.until))
        }
    }

    /// Sellers whose every report is read (they merge in this batch).
    var whole: [Int64]
    /// Sellers whose reports within a span of their own are read.
    var windowed: [Int64]
    /// The span of each of `windowed`, in the same order.
    var spans: [Span]

    /// True when no history is needed.
    var isEmpty: Bool { whole.isEmpty && windowed.isEmpty }

    /// What must be read from `reports` (`query`) for the sellers named, given their columns as
    /// locked (`records`): nothing for a kept one (its reports come from its column, `kept`); an
    /// unknown one's reports whole, so that its column can be written whole; an overflowing one's
    /// as asked.
    func unkept(given records: [Int64: SellerRecord]) -> SellerHistory {
        func record(_ seller: Int64) -> SellerRecord { records[seller] ?? .unknown }
        func isKept(_ seller: Int64) -> Bool { if case .kept = record(seller) { true } else { false } }
        func isUnknown(_ seller: Int64) -> Bool { record(seller).readsWhole }
        let overflowing = zip(windowed, spans).filter { !isKept($0.0) && !isUnknown($0.0) }
        return SellerHistory(
            whole: whole.filter { !isKept($0) } + windowed.filter(isUnknown),
            windowed: overflowing.map(\.0), spans: overflowing.map(\.1))
    }

    /// The sellers' past reports, `whole` ones' all and `windowed` ones' within their spans;
    /// columns: the seller's id, reported_at, reporter_hash. Each seller is looked up with the
    /// offenders merged into it, each of those by key in `reports_offender_idx`. Read under the
    /// sellers' locks, which keep other batches' reports of them out until this one commits.
    func query() -> Query {
        let from: [Date?] = whole.map { _ in nil } + spans.map(\.from)
        let until: [Date?] = whole.map { _ in nil } + spans.map(\.until)
        return """
            SELECT h.seller AS offender_id, r.reported_at, r.reporter_hash
              FROM unnest(\(whole + windowed)::bigint[], \(from)::timestamptz[], \(until)::timestamptz[]) AS h (seller, from_at, until_at)
             CROSS JOIN LATERAL (SELECT h.seller AS id UNION ALL SELECT o.id FROM offenders o WHERE o.merged_into = h.seller) m
             CROSS JOIN LATERAL (SELECT r.reported_at, r.reporter_hash FROM reports r
                                  WHERE r.offender_id = m.id
                                    AND r.reported_at BETWEEN coalesce(h.from_at, '-infinity') AND coalesce(h.until_at, 'infinity')
                                 OFFSET 0) r
            """
    }

    /// Of the sellers named, those whose level an administrator set (`SellerRecord.recount`): their
    /// reports are read whole, and their levels counted again over every window.
    func recount(given records: [Int64: SellerRecord]) -> Set<Int64> {
        Set((whole + windowed).filter { seller in if case .recount = records[seller] ?? .unknown { true } else { false } })
    }

    /// Of the sellers named, those whose every report the book is given: all but the overflowing
    /// ones read within a span (`unkept`: a kept one's come whole from its column, an unknown one's
    /// are read whole even where a span was asked). `records` are the columns as locked.
    func complete(given records: [Int64: SellerRecord]) -> Set<Int64> {
        Set(whole + windowed).subtracting(unkept(given: records).windowed)
    }

    /// The reports of the sellers whose column is kept, from the column, by seller: whole or within
    /// the seller's span (give or take a millisecond: a report outside the windows changes nothing).
    /// `unkept` names the others.
    func kept(in records: [Int64: SellerRecord]) throws -> [Int64: [SellerBook.Event]] {
        var events: [Int64: [SellerBook.Event]] = [:]
        let bounds = whole.map { ($0, nil as Span?) } + zip(windowed, spans).map { ($0, $1 as Span?) }
        for (seller, span) in bounds {
            guard let record = records[seller] else {
                // Every seller below the top is locked FOR UPDATE before its history is read.
                throw TiplineError(.notFound, "seller \(seller) was not locked before its history was read")
            }
            guard case .kept = record else { continue }
            events[seller] = record.events(from: span?.from.addingTimeInterval(-0.001), until: span?.until.addingTimeInterval(0.001))
        }
        return events
    }

    /// Reads the reports (`query`), by seller.
    func read(on tx: Connection) throws -> [Int64: [SellerBook.Event]] {
        var events: [Int64: [SellerBook.Event]] = [:]
        for row in try tx.queryPrepared(query()) {
            events[try row.decode(at: 0), default: []].append((try row.decode(at: 1), try row.decode(at: 2)))
        }
        return events
    }
}

extension Ladder {
    /// A ladder from a row whose first columns are window_days, review, restrict_at, suspend, refer.
    init(row: Row) throws {
        self.init(
            windowDays: try row.decode(at: 0), review: try row.decode(at: 1), restrict: try row.decode(at: 2),
            suspend: try row.decode(at: 3), refer: try row.decode(at: 4))
    }
}
