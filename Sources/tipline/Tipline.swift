import ArgumentParser

/// The `tipline` command: intake, workers and administration over one PostgreSQL database.
@main
struct Tipline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tipline",
        abstract: "Turn citizens' reports of account-rental ads into action.",
        discussion: """
            Reports are stored in PostgreSQL and processed by any number of `tipline work` processes, \
            which extract the sellers' contacts, group reports by seller and escalate repeat sellers.

            Connection: --database-url or DATABASE_URL (a libpq URI or conninfo string); otherwise \
            libpq's PG* environment variables and defaults.

            Reporters' identities are stored only as a hash keyed with TIPLINE_REPORTER_KEY (make one \
            with `openssl rand -hex 32`, keep it for good, give every host the same): `submit`, `work` \
            and `serve` need it.
            """,
        subcommands: [
            Migrate.self, Submit.self, Work.self, Status.self, Export.self, Extract.self,
            OffenderCommand.self, Dead.self, PolicyCommand.self, Escalations.self, Serve.self, TokenCommand.self,
        ]
    )
}
