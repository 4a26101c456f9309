//! Keeping a pool's threads awake across the parallel sections of training steps.
//!
//! rayon parks a thread that finds no work after a few dozen rounds. Waking it takes a futex
//! and, in a VM, an interrupt to a halted vCPU, which a busy host may serve milliseconds
//! later. Between the sections of a step (fold, blocks, update) and between steps, the second
//! thread then starts its block late or not at all, and the first runs both: 20–30 % of light
//! rank-2 steps on this project's 2-vCPU machine. While [`run`] runs its closure, every other
//! thread of the pool waits for work by polling rayon's queues instead of parking.
//!
//! The closure's own thread never polls: if it finds a polling task in its queue (while it
//! waits inside a join), the task returns at once, as waiting there for the closure to end
//! would never end.

use rayon::{ThreadPool, Yield};
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `f` on a thread of `pool` (of `threads` threads) while the others poll for work until
/// `f` returns or `stop` is set. Threads poll only where each can have a core of its own.
pub(super) fn run<R: Send>(
    pool: &ThreadPool,
    threads: usize,
    stop: &AtomicBool,
    f: impl FnOnce() -> R + Send,
) -> R {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || threads > cores {
        return pool.install(f);
    }
    stop.store(false, Ordering::Release);
    pool.install(|| {
        let home = rayon::current_thread_index();
        rayon::scope(|s| {
            for _ in 1..threads {
                s.spawn(move |_| poll(stop, home));
            }
            // Set however `f` ends: the scope waits for the pollers, also to pass on a panic.
            let _stop = Stop(stop);
            f()
        })
    })
}

/// Sets its flag when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs the pool's jobs as they come until `stop`; at once on `home`, `run`'s own thread.
fn poll(stop: &AtomicBool, home: Option<usize>) {
    if rayon::current_thread_index() == home {
        return;
    }
    while !stop.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool_of(threads: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn work_inside_runs_on_every_thread_and_the_pollers_stop() {
        let pool = pool_of(2);
        let stop = AtomicBool::new(false);
        let sums: Vec<u64> = run(&pool, 2, &stop, || {
            (0..50)
                .map(|k| (0..1000u64).into_par_iter().map(|i| i * k).sum())
                .collect()
        });
        assert!(sums
            .iter()
            .enumerate()
            .all(|(k, &s)| s == 499_500 * k as u64));
        assert!(
            stop.load(Ordering::Acquire),
            "run returns once its pollers stop"
        );
        // The pool is free again: a job from outside runs to the end.
        assert_eq!(pool.install(|| (0..10u32).into_par_iter().sum::<u32>()), 45);
        // One thread, or more threads than cores: no pollers, the same result.
        assert_eq!(run(&pool_of(1), 1, &stop, || 7), 7);
    }

    #[test]
    fn a_panic_inside_reaches_the_caller() {
        let pool = pool_of(2);
        let stop = AtomicBool::new(false);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&pool, 2, &stop, || -> u32 { panic!("inside") })
        }));
        assert!(caught.is_err() && stop.load(Ordering::Acquire));
    }
}
