//! One supervisor for the service's long-lived tasks (the assembler, the QA worker pool, the
//! report sender): a task that panics, fails or ends while the service is not stopping is
//! logged with its cause and started again after a backoff (doubling, capped); a task that keeps
//! failing — more than `max_failures` times within `window` — stops the service with an error,
//! so that the process exits non-zero and systemd (or the container runtime) restarts it. A
//! healthy restart is cheap: every task rebuilds its state from the database when it starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

/// A task's body, started again after each failure.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Makes a fresh run of a task.
pub type TaskFactory = Arc<dyn Fn() -> TaskFuture + Send + Sync>;

/// When to start a failed task again and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Wait before the first restart; doubled after each further failure.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// More failures than this within `window` stop the service.
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_failures: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// A task failed for good: the service stops.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the {task} task failed {failures} times within {window_s} s, last: {cause}; stopping so that the service manager restarts hu-red")]
pub struct GaveUp {
    pub task: &'static str,
    pub failures: u32,
    pub window_s: u64,
    pub cause: String,
}

/// What a supervised task is doing now (`/healthz` reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Failed; started again after a backoff.
    Restarting {
        cause: String,
    },
    /// Ended (shutdown, or the supervisor gave up).
    Stopped,
}

/// The state of every supervised task, shared with whoever reports health.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, TaskState>>>);

impl Status {
    fn set(&self, task: &'static str, state: TaskState) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(task, state);
        }
    }

    /// Every task and its state, by name.
    pub fn tasks(&self) -> Vec<(&'static str, TaskState)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    /// `Err(reason)` unless at least one task is known and every task runs.
    pub fn all_running(&self) -> Result<(), String> {
        let tasks = self.tasks();
        if tasks.is_empty() {
            return Err("no supervised task has started".to_string());
        }
        let bad: Vec<String> = tasks
            .iter()
            .filter_map(|(name, state)| match state {
                TaskState::Running => None,
                TaskState::Restarting { cause } => Some(format!("{name} restarting ({cause})")),
                TaskState::Stopped => Some(format!("{name} stopped")),
            })
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }
}

/// Run `tasks` until `shutdown` turns true and every task has ended (`Ok`), or until one task
/// fails for good (`Err`; the other tasks are left to the caller's shutdown).
pub async fn supervise(
    tasks: Vec<(&'static str, TaskFactory)>,
    policy: Policy,
    shutdown: watch::Receiver<bool>,
) -> Result<(), GaveUp> {
    supervise_with_status(tasks, policy, shutdown, Status::default()).await
}

/// [`supervise`], keeping `status` up to date.
pub async fn supervise_with_status(
    tasks: Vec<(&'static str, TaskFactory)>,
    policy: Policy,
    shutdown: watch::Receiver<bool>,
    status: Status,
) -> Result<(), GaveUp> {
    let mut set = JoinSet::new();
    for (name, factory) in tasks {
        status.set(name, TaskState::Running);
        set.spawn(keep_running(
            name,
            factory,
            policy,
            shutdown.clone(),
            status.clone(),
        ));
    }
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(gave_up)) => {
                error!("{gave_up}");
                set.detach_all();
                return Err(gave_up);
            }
            // keep_running itself never panics: its task runs in its own tokio task
            Err(e) => error!("a supervisor loop ended abnormally: {e}"),
        }
    }
    Ok(())
}

/// One task, started again after each failure until shutdown or until it keeps failing.
async fn keep_running(
    name: &'static str,
    factory: TaskFactory,
    policy: Policy,
    mut shutdown: watch::Receiver<bool>,
    status: Status,
) -> Result<(), GaveUp> {
    let r = keep_running_inner(name, factory, policy, &mut shutdown, &status).await;
    status.set(name, TaskState::Stopped);
    r
}

async fn keep_running_inner(
    name: &'static str,
    factory: TaskFactory,
    policy: Policy,
    shutdown: &mut watch::Receiver<bool>,
    status: &Status,
) -> Result<(), GaveUp> {
    let mut failures: Vec<Instant> = Vec::new();
    let mut backoff = policy.initial_backoff;
    loop {
        status.set(name, TaskState::Running);
        let cause = match tokio::spawn(factory()).await {
            Ok(Ok(())) if *shutdown.borrow() => return Ok(()),
            Ok(Ok(())) => "it ended while the service was running".to_string(),
            Ok(Err(e)) => e,
            Err(e) if e.is_panic() => format!("panic: {}", panic_message(e.into_panic())),
            Err(e) => format!("cancelled: {e}"),
        };
        if *shutdown.borrow() {
            warn!(
                task = name,
                "the task failed while the service was stopping: {cause}"
            );
            return Ok(());
        }
        let now = Instant::now();
        failures.retain(|t| now.duration_since(*t) <= policy.window);
        failures.push(now);
        let count = u32::try_from(failures.len()).unwrap_or(u32::MAX);
        if count > policy.max_failures {
            return Err(GaveUp {
                task: name,
                failures: count,
                window_s: policy.window.as_secs(),
                cause,
            });
        }
        error!(
            task = name,
            failures = count,
            "the task failed: {cause}; starting it again in {} ms",
            backoff.as_millis()
        );
        status.set(name, TaskState::Restarting { cause });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
        backoff = (backoff * 2).min(policy.max_backoff);
        info!(task = name, "task started again");
    }
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_failures: 3,
            window: Duration::from_secs(60),
        }
    }

    /// A task that panics on its first `panics` runs, then runs until shutdown.
    fn flaky(panics: u32, runs: Arc<AtomicU32>, stop: watch::Receiver<bool>) -> TaskFactory {
        Arc::new(move || {
            let runs = runs.clone();
            let mut stop = stop.clone();
            Box::pin(async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= panics {
                    panic!("injected fault {n}");
                }
                let _ = stop.wait_for(|s| *s).await;
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn a_panicking_task_is_started_again_and_stops_cleanly() {
        let (stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let steady = Arc::new(AtomicU32::new(0));
        let sup = tokio::spawn(supervise(
            vec![
                ("flaky", flaky(2, runs.clone(), stop.clone())),
                ("steady", flaky(0, steady.clone(), stop.clone())),
            ],
            quick(),
            stop,
        ));
        // two panics, then a third run that stays up
        for _ in 0..200 {
            if runs.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(
            steady.load(Ordering::SeqCst),
            1,
            "the other task is untouched"
        );
        stop_tx.send(true).expect("supervisor listening");
        let r = tokio::time::timeout(Duration::from_secs(10), sup)
            .await
            .expect("stops")
            .expect("no panic");
        assert_eq!(r, Ok(()));
    }

    #[tokio::test]
    async fn a_task_that_keeps_failing_stops_the_service_with_its_cause() {
        let (_stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            supervise(
                vec![("workers", flaky(u32::MAX, runs.clone(), stop.clone()))],
                quick(),
                stop,
            ),
        )
        .await
        .expect("gives up in time");
        let e = r.expect_err("gives up");
        assert_eq!(e.task, "workers");
        assert_eq!(e.failures, 4);
        assert!(e.cause.contains("injected fault 4"), "{e}");
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn errors_and_early_ends_count_as_failures() {
        let (_stop_tx, stop) = watch::channel(false);
        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        let f: TaskFactory = Arc::new(move || {
            let k = m.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if k % 2 == 0 {
                    Err("database gone".to_string())
                } else {
                    Ok(())
                }
            })
        });
        let e = supervise(vec![("sender", f)], quick(), stop)
            .await
            .expect_err("gives up");
        assert!(
            e.cause == "database gone" || e.cause.contains("ended while the service was running"),
            "{e}"
        );
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }
}
