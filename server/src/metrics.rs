//! Process metrics in Prometheus text format (`/metrics`): background job runs, rows and
//! durations, and agent API outcomes by code. Labels are job names and error codes only — never
//! a company, device or person.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default, Clone, Copy)]
struct JobStats {
    runs: u64,
    failures: u64,
    rows: u64,
    duration_sum: f64,
    last_duration: f64,
}

/// One job series: name, Prometheus type, help text, and how to read it from the stats.
type Series = (&'static str, &'static str, &'static str, fn(&JobStats) -> f64);

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: Mutex<BTreeMap<String, JobStats>>,
    agent: Mutex<BTreeMap<String, u64>>,
}

/// Request handlers that panicked in this process (the panic layer answers them with 500).
static HANDLER_PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts one panicked request handler.
pub fn handler_panicked() {
    HANDLER_PANICS.fetch_add(1, Ordering::Relaxed);
}

/// Request handlers that panicked in this process so far.
pub fn handler_panics() -> u64 {
    HANDLER_PANICS.load(Ordering::Relaxed)
}

impl Metrics {
    /// Records one run of `job`.
    pub fn job_run(&self, job: &str, rows: u64, seconds: f64, failed: bool) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let s = jobs.entry(job.to_owned()).or_default();
        s.runs += 1;
        s.failures += u64::from(failed);
        s.rows += rows;
        s.duration_sum += seconds;
        s.last_duration = seconds;
    }

    /// Counts one agent API answer (`ok` or its error code).
    pub fn agent_answer(&self, code: &str) {
        let mut agent = self.agent.lock().unwrap_or_else(|p| p.into_inner());
        *agent.entry(code.to_owned()).or_default() += 1;
    }

    /// Agent API answers so far, by outcome (`ok` or the error code).
    pub fn agent_answers(&self) -> BTreeMap<String, u64> {
        self.agent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let agent = self.agent.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        let series: [Series; 5] = [
            ("worktrail_job_runs_total", "counter", "Job runs.", |s| s.runs as f64),
            ("worktrail_job_failures_total", "counter", "Job runs that failed.", |s| {
                s.failures as f64
            }),
            ("worktrail_job_rows_total", "counter", "Rows written or deleted by jobs.", |s| {
                s.rows as f64
            }),
            ("worktrail_job_duration_seconds_sum", "counter", "Total job run time.", |s| {
                s.duration_sum
            }),
            ("worktrail_job_last_duration_seconds", "gauge", "Duration of the last run.", |s| {
                s.last_duration
            }),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (job, stats) in &jobs {
                let _ = writeln!(out, "{name}{{job=\"{job}\"}} {}", value(stats));
            }
        }
        let name = "worktrail_agent_requests_total";
        let _ = writeln!(out, "# HELP {name} Agent API answers by outcome.\n# TYPE {name} counter");
        for (code, n) in &agent {
            let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
        }
        let name = "worktrail_handler_panics_total";
        let _ = writeln!(
            out,
            "# HELP {name} Request handlers that panicked (answered 500).\n# TYPE {name} counter\n{name} {}",
            handler_panics()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_and_agent_series_are_rendered() {
        let m = Metrics::default();
        m.job_run("rollup", 3, 0.5, false);
        m.job_run("rollup", 2, 0.25, true);
        m.agent_answer("ok");
        m.agent_answer("trial_expired");
        let text = m.render();
        assert!(text.contains("worktrail_job_runs_total{job=\"rollup\"} 2"), "{text}");
        assert!(text.contains("worktrail_job_failures_total{job=\"rollup\"} 1"));
        assert!(text.contains("worktrail_job_rows_total{job=\"rollup\"} 5"));
        assert!(text.contains("worktrail_job_duration_seconds_sum{job=\"rollup\"} 0.75"));
        assert!(text.contains("worktrail_agent_requests_total{code=\"trial_expired\"} 1"));
    }
}
