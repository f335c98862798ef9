//! The time limits of an accepted association: how long the wait for its next PDU may last, and
//! what it means when that wait is over.
//!
//! - The association as a whole ends `max_association_duration` after it was accepted.
//! - No message in progress: the next PDU must come within `idle_timeout`.
//! - A message (command and data set) in progress: the next PDU must come within
//!   `read_timeout`, and once the message has been in progress for longer than `read_timeout`
//!   its bytes must average `min_transfer_rate` per second since its first PDU (checked at each
//!   PDU, and by the wait itself, which ends when the rate would fail without more bytes).

use std::time::{Duration, Instant};

use super::ScpSettings;

/// Why the wait for a PDU ended, or why a message is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Idle,
    Read,
    /// The message in progress averaged less than the minimum rate.
    TooSlow {
        bytes: u64,
        elapsed: Duration,
    },
    /// The association reached `max_association_duration`.
    TimeLimit,
}

/// A message in progress.
#[derive(Debug, Clone, Copy)]
struct Progress {
    started: Instant,
    bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Limits {
    read_timeout: Duration,
    idle_timeout: Duration,
    /// Bytes per second; 0 = no minimum.
    min_rate: u64,
    ends_at: Instant,
    message: Option<Progress>,
}

impl Limits {
    /// The limits of an association accepted at `accepted`.
    pub fn new(settings: &ScpSettings, accepted: Instant) -> Limits {
        Limits {
            read_timeout: settings.read_timeout,
            idle_timeout: settings.idle_timeout,
            min_rate: settings.min_transfer_rate,
            ends_at: accepted + settings.max_association_duration,
            message: None,
        }
    }

    /// A message starts at `now` (its first PDU arrived).
    pub fn start_message(&mut self, now: Instant) {
        self.message = Some(Progress {
            started: now,
            bytes: 0,
        });
    }

    /// `bytes` more of the message in progress arrived.
    pub fn add(&mut self, bytes: usize) {
        if let Some(m) = &mut self.message {
            m.bytes = m.bytes.saturating_add(bytes as u64);
        }
    }

    /// No message in progress any more.
    pub fn message_done(&mut self) {
        self.message = None;
    }

    /// When the message in progress becomes too slow if nothing more arrives: `read_timeout`
    /// after its start, or when its bytes stop averaging the minimum rate, whichever is later.
    fn too_slow_at(&self, m: &Progress) -> Option<Instant> {
        if self.min_rate == 0 {
            return None;
        }
        let at_rate = Duration::from_secs_f64(m.bytes as f64 / self.min_rate as f64);
        m.started.checked_add(self.read_timeout.max(at_rate))
    }

    /// The end of the wait for the next PDU, and what it means if it is reached.
    pub fn deadline(&self, now: Instant) -> (Instant, Expiry) {
        let mut best = match &self.message {
            None => (now + self.idle_timeout, Expiry::Idle),
            Some(_) => (now + self.read_timeout, Expiry::Read),
        };
        if let Some(m) = &self.message {
            if let Some(at) = self.too_slow_at(m) {
                if at < best.0 {
                    best = (
                        at,
                        Expiry::TooSlow {
                            bytes: m.bytes,
                            elapsed: at.saturating_duration_since(m.started),
                        },
                    );
                }
            }
        }
        if self.ends_at <= best.0 {
            best = (self.ends_at, Expiry::TimeLimit);
        }
        best
    }

    /// After a PDU: is the association over its time, or the message in progress too slow?
    pub fn check(&self, now: Instant) -> Option<Expiry> {
        if now >= self.ends_at {
            return Some(Expiry::TimeLimit);
        }
        let m = self.message.as_ref()?;
        let at = self.too_slow_at(m)?;
        (now > at).then(|| Expiry::TooSlow {
            bytes: m.bytes,
            elapsed: now.saturating_duration_since(m.started),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(t0: Instant) -> Limits {
        Limits::new(
            &ScpSettings {
                read_timeout: Duration::from_secs(2),
                idle_timeout: Duration::from_secs(10),
                min_transfer_rate: 1000,
                max_association_duration: Duration::from_secs(60),
                ..ScpSettings::default()
            },
            t0,
        )
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn idle_and_read_waits() {
        let t0 = Instant::now();
        let mut l = limits(t0);
        assert_eq!(l.deadline(t0), (t0 + S(10), Expiry::Idle));
        l.start_message(t0);
        l.add(100_000);
        // plenty of bytes: the per-PDU read timeout is what ends the wait
        assert_eq!(l.deadline(t0 + S(1)), (t0 + S(3), Expiry::Read));
        assert_eq!(l.check(t0 + S(50)), None);
        l.message_done();
        assert_eq!(l.deadline(t0 + S(5)), (t0 + S(15), Expiry::Idle));
    }

    #[test]
    fn a_slow_message_is_cut_after_read_timeout_when_below_the_rate() {
        let t0 = Instant::now();
        let mut l = limits(t0);
        l.start_message(t0);
        l.add(500);
        // 500 bytes are worth 0.5 s at 1000 B/s: too slow from read_timeout (2 s) on
        assert_eq!(l.check(t0 + S(1)), None, "not before read_timeout");
        let (at, why) = l.deadline(t0 + S(1));
        assert_eq!(at, t0 + S(2));
        assert!(matches!(why, Expiry::TooSlow { bytes: 500, .. }), "{why:?}");
        assert!(matches!(
            l.check(t0 + Duration::from_millis(2100)),
            Some(Expiry::TooSlow { bytes: 500, .. })
        ));
        // more bytes move the point: 3000 bytes hold until 3 s
        l.add(2500);
        assert_eq!(l.check(t0 + Duration::from_millis(2900)), None);
        assert_eq!(l.deadline(t0 + Duration::from_millis(2900)).0, t0 + S(3));
        assert!(l.check(t0 + Duration::from_millis(3100)).is_some());
    }

    #[test]
    fn no_minimum_rate_when_zero() {
        let t0 = Instant::now();
        let mut l = Limits::new(
            &ScpSettings {
                read_timeout: Duration::from_secs(2),
                min_transfer_rate: 0,
                ..ScpSettings::default()
            },
            t0,
        );
        l.start_message(t0);
        assert_eq!(l.check(t0 + S(100)), None);
        assert_eq!(l.deadline(t0 + S(100)).1, Expiry::Read);
    }

    #[test]
    fn the_association_time_limit_ends_any_wait() {
        let t0 = Instant::now();
        let mut l = limits(t0);
        assert_eq!(l.deadline(t0 + S(55)), (t0 + S(60), Expiry::TimeLimit));
        l.start_message(t0 + S(59));
        l.add(1 << 20);
        assert_eq!(l.deadline(t0 + S(59)), (t0 + S(60), Expiry::TimeLimit));
        assert_eq!(l.check(t0 + S(59)), None);
        assert_eq!(l.check(t0 + S(60)), Some(Expiry::TimeLimit));
    }
}
