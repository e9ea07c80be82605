//! The long versions of the reliability tests. A test with a long version takes its round count
//! from `WORKTRAIL_SOAK_ROUNDS` (CI runs the short default) and prints one `soak-report:` line of
//! JSON, which `scripts/soak` gathers into its table.

/// Rounds to run: `WORKTRAIL_SOAK_ROUNDS` when set (the soak script), else `ci_default`.
pub fn rounds(ci_default: usize) -> usize {
    match std::env::var("WORKTRAIL_SOAK_ROUNDS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WORKTRAIL_SOAK_ROUNDS={v:?} is not a number")),
        Err(_) => ci_default,
    }
}

/// What one reliability test did, as `scripts/soak` prints it.
#[derive(Debug, Default)]
pub struct Report {
    /// The test's name.
    pub test: &'static str,
    /// Rounds run.
    pub rounds: usize,
    /// Faults injected (kills, cuts, partitions, …).
    pub faults: usize,
    /// Records generated on the agent side.
    pub generated: usize,
    /// Generated records missing on the server at the end.
    pub lost: usize,
    /// Records stored more than once.
    pub duplicated: usize,
    /// 5xx answers the server gave.
    pub server_5xx: u64,
    /// Request handlers that panicked, where the test can see them (a server in this process).
    pub panics: Option<u64>,
}

impl Report {
    /// Prints the `soak-report:` line (shown by `cargo nextest run --no-capture`).
    #[allow(clippy::print_stdout, reason = "the soak script reads this line from stdout")]
    pub fn print(&self) {
        let line = serde_json::json!({
            "test": self.test,
            "rounds": self.rounds,
            "faults": self.faults,
            "generated": self.generated,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "server_5xx": self.server_5xx,
            "panics": self.panics,
        });
        println!("soak-report: {line}");
    }
}
