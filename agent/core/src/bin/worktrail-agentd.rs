//! `worktrail-agentd`: the headless Worktrail agent. All behaviour is in the library's `cli`.

fn main() -> std::process::ExitCode {
    worktrail_agent_core::cli::main()
}
