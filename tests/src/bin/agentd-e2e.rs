//! The headless agent (`worktrail-agentd`) built inside the test package, so the end-to-end tests
//! can start it as a real process (`CARGO_BIN_EXE_agentd-e2e`): same code, one line.

fn main() -> std::process::ExitCode {
    worktrail_agent_core::cli::main()
}
