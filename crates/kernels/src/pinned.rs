//! Pinned column ownership: every pass over a weight matrix `W` (`rows x cols`,
//! row-major) that runs on several threads gives thread `t` of the pool the same
//! column range of `W`, [`cols`]`(cols, threads, t)`.
//!
//! Why: a training step touches each `W` three times (the forward product `X W`, the
//! penalty pass, the weight-gradient product `W += X^T D`). With work stealing, which
//! thread gets which block changes from pass to pass, so the part of `W` one core has
//! just written is read by the other next, through the other core's cache. With pinned
//! ranges a core's slice of `W` stays in its own L2 cache across the step (784x800 f32
//! is 2.5 MB; half of it fits in this Xeon's 2 MB L2, all of it does not).
//!
//! Bits: the ranges depend on the pool size, but nothing computed depends on them. The
//! elementwise passes are elementwise, and a GEMM's element is computed by one kernel
//! call whatever block it lies in (module `gemm`), so a pinned split gives the bits of
//! one call; the tests of `gemm` and `update` check it.

use std::ops::Range;

use crate::gemm::TILE;

/// The number of threads of the current rayon pool (the global pool outside one).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Thread `t`'s part of `0..len` among `threads`: contiguous, cut at multiples of
/// [`TILE`] (16 floats, a cache line pair and one AVX-512 vector), as even as the tiles
/// allow. Parts may be empty when `len` has fewer tiles than `threads`.
///
/// # Panics
/// If `threads == 0` or `t >= threads`.
pub fn cols(len: usize, threads: usize, t: usize) -> Range<usize> {
    assert!(t < threads, "pinned::cols: part {t} of {threads}");
    let tiles = len.div_ceil(TILE);
    let lo = (t * tiles / threads * TILE).min(len);
    let hi = ((t + 1) * tiles / threads * TILE).min(len);
    lo..hi
}

/// Runs `one(i)` for `i` in `0..parts` on [`threads`] threads, part `i` on thread
/// `i % threads` (thread 0 is the caller; thread `t > 0` is the same helper thread on
/// every call), and returns when all parts have run. A thread done with its own parts
/// takes the parts another has not started, from the last (so a core slowed down by
/// the machine does not hold the others up; each part runs exactly once). With one
/// part, or one thread, it runs on the calling thread.
///
/// The helpers are a team of our own per pool size, not rayon's workers: a rayon
/// worker with nothing to do sleeps within microseconds, and on these virtual machines
/// waking a sleeping core costs tens of microseconds, as much as the product it would
/// run. A helper spins for [`SPIN`] after each part before it parks, so the parts of a
/// training step (microseconds to milliseconds apart) find it awake. If another thread
/// is using the team of this size, the parts run by a rayon broadcast instead (the same
/// assignment of parts to pool threads, so the same bits).
///
/// # Panics
/// If a part panics (after all parts have finished).
pub fn run(parts: usize, one: impl Fn(usize) + Sync) {
    let threads = threads();
    if parts <= 1 || threads == 1 || team::in_helper() {
        (0..parts).for_each(one);
        return;
    }
    if !team::run(threads, parts, &one) {
        rayon::broadcast(|ctx| {
            let mut i = ctx.index();
            while i < parts {
                one(i);
                i += ctx.num_threads();
            }
        });
    }
}

/// How long a helper spins for the next part before it parks.
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(500);

mod team {
    //! The helper threads of [`super::run`]: per pool size `T`, `T - 1` threads that
    //! spin on a job counter, then park.

    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::thread::Thread;
    use std::time::Instant;

    type Job = *const (dyn Fn(usize) + Sync);

    /// One team: its helpers and the job they are given.
    struct Team {
        threads: usize,
        /// Held by the caller for a whole [`run`]: one job at a time.
        busy: Mutex<()>,
        /// Incremented once per job (helpers run a job when it moves).
        seq: AtomicU64,
        /// The current job and its part count (written before `seq` moves).
        job: Mutex<Option<(JobPtr, usize)>>,
        /// Helpers that have not finished the current job.
        pending: AtomicUsize,
        /// A helper's part panicked.
        panicked: AtomicBool,
        /// Per part of the current job (up to [`STEAL_MAX`] parts): taken by a thread.
        taken: [AtomicBool; STEAL_MAX],
        helpers: OnceLock<Vec<(Thread, Arc<AtomicBool>)>>,
    }

    /// Jobs of up to this many parts are balanced: a thread done with its own parts
    /// takes the others' not yet taken, from the last. Larger jobs run statically.
    const STEAL_MAX: usize = 64;

    /// Thread `index`'s share of a job: its own parts (`index`, `index + threads`, ...)
    /// in order, then any part still untaken, from the last (a thread slowed down by the
    /// machine leaves its last parts to the others; each part runs exactly once).
    fn work(team: &Team, index: usize, parts: usize, one: &(dyn Fn(usize) + Sync)) {
        let threads = team.threads;
        if parts > STEAL_MAX {
            let mut i = index;
            while i < parts {
                one(i);
                i += threads;
            }
            return;
        }
        let mut i = index;
        while i < parts {
            if !team.taken[i].swap(true, SeqCst) {
                one(i);
            }
            i += threads;
        }
        for i in (0..parts).rev() {
            if !team.taken[i].swap(true, SeqCst) {
                one(i);
            }
        }
    }

    #[derive(Clone, Copy)]
    struct JobPtr(Job);
    // SAFETY: the closure behind the pointer is `Sync` and outlives every use: `run`
    // does not return before every helper has finished with it.
    unsafe impl Send for JobPtr {}

    thread_local! {
        static HELPER: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether this thread is a helper (a part never starts a nested team job).
    pub(super) fn in_helper() -> bool {
        HELPER.with(Cell::get)
    }

    fn team(threads: usize) -> Arc<Team> {
        static TEAMS: Mutex<Vec<Arc<Team>>> = Mutex::new(Vec::new());
        let mut teams = TEAMS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = teams.iter().find(|t| t.threads == threads) {
            return Arc::clone(t);
        }
        let t = Arc::new(Team {
            threads,
            busy: Mutex::new(()),
            seq: AtomicU64::new(0),
            job: Mutex::new(None),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            taken: std::array::from_fn(|_| AtomicBool::new(false)),
            helpers: OnceLock::new(),
        });
        let helpers = (1..threads)
            .map(|index| {
                let parked = Arc::new(AtomicBool::new(false));
                let (team, flag) = (Arc::clone(&t), Arc::clone(&parked));
                let handle = std::thread::Builder::new()
                    .name(format!("regulab-pinned-{index}/{threads}"))
                    .spawn(move || helper(&team, index, &flag))
                    .expect("regulab: cannot start a helper thread");
                (handle.thread().clone(), parked)
            })
            .collect();
        let _ = t.helpers.set(helpers);
        teams.push(Arc::clone(&t));
        t
    }

    fn helper(team: &Team, index: usize, parked: &AtomicBool) {
        HELPER.with(|h| h.set(true));
        let mut seen = 0u64;
        loop {
            // spin, then park until the job counter moves
            let start = Instant::now();
            let mut spins = 0u32;
            while team.seq.load(SeqCst) == seen {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) && start.elapsed() > super::SPIN {
                    parked.store(true, SeqCst);
                    if team.seq.load(SeqCst) == seen {
                        std::thread::park();
                    }
                    parked.store(false, SeqCst);
                } else {
                    std::hint::spin_loop();
                }
            }
            seen = team.seq.load(SeqCst);
            let job = *team.job.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((JobPtr(job), parts)) = job {
                // SAFETY: see `JobPtr`: the caller waits for `pending` to reach zero
                // before the closure goes out of scope.
                let one = unsafe { &*job };
                let result = catch_unwind(AssertUnwindSafe(|| work(team, index, parts, one)));
                if result.is_err() {
                    team.panicked.store(true, SeqCst);
                }
            }
            team.pending.fetch_sub(1, SeqCst);
        }
    }

    /// Runs the job on the team of `threads`; `false` (nothing run) if another thread
    /// holds that team.
    pub(super) fn run(threads: usize, parts: usize, one: &(dyn Fn(usize) + Sync)) -> bool {
        let team = team(threads);
        let Ok(_busy) = team.busy.try_lock() else {
            return false;
        };
        // SAFETY (lifetime erasure): helpers use the pointer only between the `seq`
        // increment below and their `pending` decrement, and this function does not
        // return (or unwind) before `pending` is zero.
        let ptr: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(one) };
        *team.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((JobPtr(ptr), parts));
        for t in &team.taken[..parts.min(STEAL_MAX)] {
            t.store(false, SeqCst);
        }
        team.pending.store(threads - 1, SeqCst);
        team.seq.fetch_add(1, SeqCst);
        for (thread, parked) in team.helpers.get().into_iter().flatten() {
            if parked.load(SeqCst) {
                thread.unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| work(&team, 0, parts, one)));
        while team.pending.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        *team.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let helper_panicked = team.panicked.swap(false, SeqCst);
        if let Err(e) = mine {
            std::panic::resume_unwind(e);
        }
        assert!(
            !helper_panicked,
            "regulab: a pinned part panicked on a helper thread"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_in_order() {
        for len in [1, 10, 15, 16, 17, 784, 800] {
            for threads in 1..=5 {
                let mut next = 0;
                for t in 0..threads {
                    let r = cols(len, threads, t);
                    assert_eq!(r.start, next, "len {len}, {threads} threads, part {t}");
                    assert!(r.start.is_multiple_of(TILE) || r.is_empty());
                    next = r.end;
                }
                assert_eq!(next, len, "len {len}, {threads} threads");
            }
        }
        assert_eq!(cols(800, 2, 0), 0..400);
        assert_eq!(cols(800, 2, 1), 400..800);
    }

    /// Every part runs exactly once; when none was taken from its owner, part `i` ran
    /// on thread `i % threads`, part 0 on the caller, and the same threads every call.
    #[test]
    fn parts_run_on_their_threads() {
        use std::sync::Mutex;
        use std::thread::ThreadId;
        // pool sizes no other test of this binary uses: a team busy with another
        // test's job would hand the parts to a rayon broadcast instead (same parts,
        // other threads)
        for threads in [1, 5, 6] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut first: Option<Vec<(usize, ThreadId)>> = None;
            for _ in 0..50 {
                let seen = Mutex::new(Vec::new());
                let caller = pool.install(|| {
                    run(7, |i| {
                        seen.lock().unwrap().push((i, std::thread::current().id()))
                    });
                    std::thread::current().id()
                });
                let mut seen = seen.into_inner().unwrap();
                seen.sort_unstable_by_key(|(i, _)| *i);
                assert_eq!(
                    seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
                    (0..7).collect::<Vec<_>>()
                );
                // when no part was taken from its owner (every helper awake and as
                // fast as the caller: the usual case), part i ran on thread i % threads,
                // the caller's parts on the caller, the same threads from call to call
                let owned = (0..threads).all(|t| {
                    let mut ids = seen.iter().filter(|(i, _)| i % threads == t).map(|p| p.1);
                    let id = ids.next();
                    ids.all(|o| Some(o) == id)
                });
                let distinct: std::collections::HashSet<_> = seen.iter().map(|p| p.1).collect();
                if owned && distinct.len() == threads {
                    assert_eq!(seen[0].1, caller, "{threads} threads");
                    match &first {
                        None => first = Some(seen),
                        Some(f) if seen[0].1 == f[0].1 => {
                            assert_eq!(&seen, f, "{threads} threads: the same threads")
                        }
                        Some(_) => {} // install may pick another worker as the caller
                    }
                }
            }
        }
    }

    /// A part that panics on a helper surfaces on the caller, once every other part
    /// has run (four parts on four threads; a pool size no other test uses).
    #[test]
    fn a_helper_panic_reaches_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                run(4, |i| {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert!(i != 1, "part 1 fails");
                })
            })
        }));
        assert!(r.is_err());
        assert_eq!(ran.into_inner(), 4);
    }
}
