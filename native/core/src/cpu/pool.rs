//! Persistent CPU thread pool: `n_threads - 1` workers are spawned once and park between jobs; the calling
//! thread is thread 0 and takes tasks too. A job is `n_tasks` calls of one closure; tasks are handed out by an
//! atomic counter, so uneven tasks balance themselves. Nothing is spawned or allocated per job.
//!
//! Waiting is spin-then-park (ggml's threadpool idea): a worker spins briefly on the job generation counter,
//! then sleeps on a condvar. Does not own work splitting policy: callers choose tasks (usually row chunks).
//!
//! A worker *joins* a job (one CAS on `state`) before it takes tasks; once the caller has claimed the last task
//! it *closes* the job and waits only for the workers that joined. A worker that wakes late (descheduled on a
//! busy machine) finds the job closed and goes back to waiting, so the caller never waits for a thread that
//! had no part in the job.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Spins before parking (why: a decode step issues ~10 jobs per layer back to back with short single-thread
/// gaps (norms, RoPE) between them; at 4096 spins (a few µs) workers parked between ops and every job paid a
/// futex wake (~20–50 µs on shared cores). 2^18 `spin_loop`s is ~1 ms: covers any gap inside a forward pass,
/// while an idle pool still parks quickly on the scale of a user's pause).
const SPIN: u32 = 1 << 18;

type Job = *const (dyn Fn(usize, usize) + Sync);

struct Shared {
    /// Incremented once per job; workers compare against the last generation they ran.
    gen: AtomicU64,
    job: UnsafeCell<Option<Job>>,
    n_tasks: AtomicUsize,
    next: AtomicUsize,
    /// `generation << 32 | CLOSED | workers inside the job`: the current job's low 32 bits of `gen`, whether it
    /// still admits workers, and how many joined and have not finished.
    state: AtomicU64,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// Workers parked (or about to park) on `wake`; `run_t` takes the lock and notifies only when non-zero,
    /// so the hot path is one atomic increment per job, no syscall.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

const CLOSED: u64 = 1 << 31;
const COUNT: u64 = CLOSED - 1;

// SAFETY: `job` is written only by the owner thread before `gen` is published with Release and read by
// workers after joining the job of that generation (`state`); the pointee outlives the job because `run_t`
// closes the job and waits until no joined worker is inside.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    n_threads: usize,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in total (the caller counts as one); `n_threads` is clamped to ≥ 1.
    pub fn new(n_threads: usize) -> ThreadPool {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            gen: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            n_tasks: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            state: AtomicU64::new(CLOSED),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..n_threads)
            .map(|ith| {
                let s = shared.clone();
                std::thread::Builder::new().name(format!("ikl-cpu-{ith}")).spawn(move || worker(&s, ith)).map_err(|e| e.to_string())
            })
            .filter_map(|r| r.ok())
            .collect::<Vec<_>>();
        let n_threads = workers.len() + 1;
        ThreadPool { shared, workers, n_threads }
    }

    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Run `f(task)` for every `task` in `0..n_tasks` across the pool; returns when all are done.
    pub fn run(&self, n_tasks: usize, f: impl Fn(usize) + Sync) {
        self.run_t(n_tasks, |task, _thread| f(task));
    }

    /// Like `run`, also passing the index (`0..n_threads`) of the executing thread, for per-thread scratch.
    pub fn run_t(&self, n_tasks: usize, f: impl Fn(usize, usize) + Sync) {
        if n_tasks == 0 {
            return;
        }
        if self.n_threads == 1 || n_tasks == 1 {
            for t in 0..n_tasks {
                f(t, 0);
            }
            return;
        }
        let s = &*self.shared;
        let obj: &(dyn Fn(usize, usize) + Sync) = &f;
        // SAFETY: lifetime erased; the pointer is dropped from every worker's view before this function
        // returns (the job is closed and no joined worker is left inside below), so it never dangles.
        let ptr: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), Job>(obj) };
        // SAFETY: no worker reads `job` until `gen` changes (published below with Release).
        unsafe { *s.job.get() = Some(ptr) };
        s.n_tasks.store(n_tasks, Ordering::Relaxed);
        s.next.store(0, Ordering::Relaxed);
        let g = s.gen.load(Ordering::Relaxed).wrapping_add(1);
        s.state.store((g & 0xffff_ffff) << 32, Ordering::Relaxed);
        // SeqCst pairs with the worker's `sleepers` increment then `gen` re-check: either it sees the new
        // generation or we see it sleeping (and its check runs under the lock we take to notify).
        s.gen.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) != 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let caller = catch_unwind(AssertUnwindSafe(|| take_tasks(s, obj, 0)));
        // every task is claimed: admit no more workers, wait for those inside
        s.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut spins = 0u32;
        while s.state.load(Ordering::Acquire) & COUNT != 0 {
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if let Err(p) = caller {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("ikl thread pool: a task panicked on a worker thread");
        }
    }
}

fn take_tasks(s: &Shared, f: &(dyn Fn(usize, usize) + Sync), ith: usize) {
    let n = s.n_tasks.load(Ordering::Relaxed);
    loop {
        let t = s.next.fetch_add(1, Ordering::Relaxed);
        if t >= n {
            break;
        }
        f(t, ith);
    }
}

/// Enter the job of generation `gen` if it is still open (one CAS); false if it is closed or not current.
fn join(s: &Shared, gen: u64) -> bool {
    let mut st = s.state.load(Ordering::Acquire);
    loop {
        if st >> 32 != gen & 0xffff_ffff || st & CLOSED != 0 {
            return false;
        }
        match s.state.compare_exchange_weak(st, st + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => st = now,
        }
    }
}

fn worker(s: &Shared, ith: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        loop {
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            if s.gen.load(Ordering::Acquire) != seen {
                break;
            }
            if spins < SPIN {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            if s.gen.load(Ordering::SeqCst) == seen && !s.shutdown.load(Ordering::Acquire) {
                drop(s.wake.wait(g).unwrap_or_else(|e| e.into_inner()));
            }
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
            spins = 0;
        }
        seen = s.gen.load(Ordering::Acquire);
        if !join(s, seen) {
            continue; // closed before we got here (or a newer job is being set up): nothing of ours to do
        }
        // SAFETY: published before `gen` (Release/Acquire); valid while we are counted in `state`.
        if let Some(job) = unsafe { *s.job.get() } {
            // SAFETY: see `run_t`; the closure outlives this job.
            let f = unsafe { &*job };
            if catch_unwind(AssertUnwindSafe(|| take_tasks(s, f, ith))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        s.state.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.shutdown.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A raw pointer to an output buffer that tasks write disjoint parts of.
#[derive(Clone, Copy)]
pub struct SyncPtr<T>(pub *mut T);
// SAFETY: users guarantee that concurrent tasks touch disjoint elements.
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    pub fn new(s: &mut [T]) -> Self {
        SyncPtr(s.as_mut_ptr())
    }
    /// # Safety
    /// `off..off+len` must lie in the original slice and not be accessed by any other task concurrently.
    #[inline]
    pub unsafe fn slice(self, off: usize, len: usize) -> &'static mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(off), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn runs_every_task_once() {
        let p = ThreadPool::new(3);
        for n in [0usize, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            p.run(n, |t| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn back_to_back_jobs_with_late_workers() {
        // many tiny jobs: workers often arrive after the caller has claimed every task (closed job)
        let p = ThreadPool::new(4);
        let sum = AtomicUsize::new(0);
        for j in 0..20_000usize {
            let n = 1 + j % 5;
            p.run_t(n, |t, th| {
                assert!(th < 4);
                sum.fetch_add(t + 1, Ordering::Relaxed);
            });
        }
        let want: usize = (0..20_000usize).map(|j| (1 + j % 5) * (2 + j % 5) / 2).sum();
        assert_eq!(sum.load(Ordering::Relaxed), want);
    }
}
