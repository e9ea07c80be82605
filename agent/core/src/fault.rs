//! Named fault points for crash tests. Compiled only with the cargo feature `fault-points`
//! (the end-to-end tests enable it for the agent binary they build); without it every function
//! here is an empty inline call and a release build has no fault point at all.
//!
//! `WORKTRAIL_FAULT_POINT=<name>[:<n>]` arms one point: at its `n`th hit in this process
//! (default the first) the process writes `WORKTRAIL-FAULT-POINT <name> hit=<n> <detail>` to
//! stderr and then hangs forever, so a test can SIGKILL it exactly there. The points, in the
//! order a record passes them:
//!
//! | name | where |
//! |---|---|
//! | `queued` | records pushed, their transaction committed |
//! | `batch-built` | a new in-flight batch and its body stored |
//! | `request-sent` | the batch body's last byte handed to the connection (marker only, no hang: the request must go out; the test kills at once) |
//! | `response-arrived` | the server's ack read and checked, before the local acknowledgement |
//! | `ack-commit` | inside the acknowledgement transaction, after its deletes, before `COMMIT` |
//!
//! Two more test switches live here: `WORKTRAIL_FAULT_BATCH_RECORDS=<n>` caps the records per
//! batch (so a test gets several batches out of few records), and
//! `WORKTRAIL_FAULT_SKIP_PRECHECK=1` sends records without the agent's own validation, standing
//! in for a server whose rules are stricter than this build's (a poison record only the server
//! refuses).

/// The names of every fault point.
pub const POINTS: [&str; 5] =
    ["queued", "batch-built", "request-sent", "response-arrived", "ack-commit"];

/// The marker a fault point writes to stderr before it hangs.
pub const MARKER: &str = "WORKTRAIL-FAULT-POINT";

#[cfg(feature = "fault-points")]
mod armed {
    use std::io::Write;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(super) struct Armed {
        pub(super) name: String,
        nth: u64,
        hits: AtomicU64,
    }

    pub(super) fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var("WORKTRAIL_FAULT_POINT").ok()?;
                let (name, nth) = match spec.split_once(':') {
                    Some((name, n)) => (name, n.parse().ok()?),
                    None => (spec.as_str(), 1),
                };
                if !super::POINTS.contains(&name) {
                    // A typo must not silently turn a crash test into a plain run.
                    panic!("WORKTRAIL_FAULT_POINT names no fault point: {name:?}");
                }
                Some(Armed { name: name.to_owned(), nth, hits: AtomicU64::new(0) })
            })
            .as_ref()
    }

    /// Whether this hit of `name` is the armed one; writes the marker when it is.
    pub fn fire(name: &str, detail: &dyn std::fmt::Display) -> bool {
        let Some(a) = armed().filter(|a| a.name == name) else { return false };
        let hit = a.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if hit != a.nth {
            return false;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{} {name} hit={hit} {detail}", super::MARKER);
        let _ = err.flush();
        true
    }

    pub fn hang() -> ! {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    pub fn env_usize(key: &str) -> Option<usize> {
        std::env::var(key).ok()?.parse().ok()
    }
}

/// A fault point: hangs here when armed for this hit (see the module docs).
#[inline]
pub fn point(name: &'static str, detail: &dyn std::fmt::Display) {
    #[cfg(feature = "fault-points")]
    if armed::fire(name, detail) {
        armed::hang();
    }
    #[cfg(not(feature = "fault-points"))]
    let _ = (name, detail);
}

/// A fault point that only writes its marker (the caller must go on for the fault to matter).
#[inline]
pub fn mark(name: &'static str, detail: &dyn std::fmt::Display) {
    #[cfg(feature = "fault-points")]
    armed::fire(name, detail);
    #[cfg(not(feature = "fault-points"))]
    let _ = (name, detail);
}

/// Whether `name` is the armed point (so a caller can prepare what [`mark`] needs).
#[inline]
pub fn is_armed(name: &'static str) -> bool {
    #[cfg(feature = "fault-points")]
    {
        armed::armed().is_some_and(|a| a.name == name)
    }
    #[cfg(not(feature = "fault-points"))]
    {
        let _ = name;
        false
    }
}

/// The test cap on records per batch, when set.
#[inline]
pub fn batch_records() -> Option<usize> {
    #[cfg(feature = "fault-points")]
    {
        armed::env_usize("WORKTRAIL_FAULT_BATCH_RECORDS").filter(|&n| n > 0)
    }
    #[cfg(not(feature = "fault-points"))]
    None
}

/// Whether the agent's own record check before sending is switched off (tests only).
#[inline]
pub fn skip_precheck() -> bool {
    #[cfg(feature = "fault-points")]
    {
        std::env::var("WORKTRAIL_FAULT_SKIP_PRECHECK").is_ok_and(|v| v == "1")
    }
    #[cfg(not(feature = "fault-points"))]
    false
}

/// The batch request with its body: the plain bytes, or — when `request-sent` is armed — the
/// same bytes as a stream that writes the marker as it hands over the last byte.
#[inline]
pub fn batch_body(req: reqwest::RequestBuilder, body: Vec<u8>) -> reqwest::RequestBuilder {
    #[cfg(feature = "fault-points")]
    if is_armed("request-sent") && body.len() > 1 {
        let len = body.len();
        return req
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream::LastByte::new(body)));
    }
    req.body(body)
}

#[cfg(feature = "fault-points")]
mod stream {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body in two chunks (all but the last byte, then the last byte); yielding the second
    /// fires `request-sent`.
    #[derive(Debug)]
    pub struct LastByte(Vec<Vec<u8>>);

    impl LastByte {
        pub fn new(mut body: Vec<u8>) -> Self {
            let last = body.split_off(body.len() - 1);
            Self(vec![last, body])
        }
    }

    impl futures_core::Stream for LastByte {
        type Item = Result<Vec<u8>, std::io::Error>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let next = self.0.pop();
            if next.is_some() && self.0.is_empty() {
                super::mark("request-sent", &"last-byte");
            }
            Poll::Ready(next.map(Ok))
        }
    }
}
