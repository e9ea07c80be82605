//! Per-minute activity: how many seconds of each minute had input (idle time under one second).
//! Only the idle timer is consulted; nothing about the input itself is known or kept.

use worktrail_shared::api::RecordBody;

/// Accumulates the seconds with input of the current minute.
#[derive(Debug, Default)]
pub struct ActivityMinutes {
    minute_ms: Option<i64>,
    seconds: u64,
}

fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000) * 60_000
}

impl ActivityMinutes {
    /// Records the sample taken at `now_ms`: the second before it had input when `idle_ms` is
    /// under 1000. Returns the previous minute's record when this sample starts a new minute.
    pub fn record(&mut self, now_ms: i64, idle_ms: u64) -> Option<RecordBody> {
        let second_start = now_ms - 1000;
        let minute = minute_of(second_start);
        let flushed = if self.minute_ms != Some(minute) { self.flush() } else { None };
        self.minute_ms = Some(minute);
        if idle_ms < 1000 {
            let index = (second_start - minute) / 1000;
            self.seconds |= 1u64 << index;
        }
        flushed
    }

    /// Emits the current minute (if any sample fell in it) and starts afresh.
    pub fn flush(&mut self) -> Option<RecordBody> {
        let minute_ms = self.minute_ms.take()?;
        let active_secs = self.seconds.count_ones() as u8;
        self.seconds = 0;
        Some(RecordBody::Activity { minute_ms, active_secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_input_are_counted_per_minute() {
        let mut a = ActivityMinutes::default();
        let t0 = 1_000 * 60_000;
        // 30 samples with input, then 20 without, all in the first minute.
        for s in 1..=30 {
            assert!(a.record(t0 + s * 1000, 200).is_none());
        }
        for s in 31..=50 {
            assert!(a.record(t0 + s * 1000, 5_000).is_none());
        }
        // The first sample of the next minute closes the first.
        let flushed = a.record(t0 + 61_000, 0).unwrap();
        assert_eq!(flushed, RecordBody::Activity { minute_ms: t0, active_secs: 30 });
        assert_eq!(
            a.flush(),
            Some(RecordBody::Activity { minute_ms: t0 + 60_000, active_secs: 1 })
        );
        assert_eq!(a.flush(), None);
    }

    #[test]
    fn the_same_second_sampled_twice_counts_once() {
        let mut a = ActivityMinutes::default();
        a.record(60_000 + 1_500, 0);
        a.record(60_000 + 1_900, 0);
        assert_eq!(a.flush(), Some(RecordBody::Activity { minute_ms: 60_000, active_secs: 1 }));
    }
}
