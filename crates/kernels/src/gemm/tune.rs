//! Which kernel computes a product, decided by timing them on the running CPU.
//!
//! Why: the kernels give the same bits (the parent module says why), so the fastest one
//! may be chosen freely, and which one is fastest depends on the CPU. Thresholds measured
//! on one machine were wrong on the next: on an AMD EPYC the direct kernel won the weight
//! gradient at batch 100 and zero-skipping won on Fashion-MNIST's inputs; on the Intel
//! Xeon that replaced it matrixmultiply's packed kernel wins the first and zero-skipping
//! loses the second. So [`super::gemm`] measures instead of assuming.
//!
//! How: every distinct product signature ([`Key`]: the shape, the transposes, overwrite
//! or add, and the size of the rayon pool it runs in) starts in exploration. Its calls
//! take the eligible plans ([`Plan`]: a [`Kernel`], matrixmultiply's `sgemm`, the direct
//! kernels or the zero-skipping kernels, split over the shape's blocks or as one block)
//! in turn, [`ROUNDS`] rounds in rotated orders, [`STREAK`] consecutive calls per plan
//! per round with only the last timed (the earlier ones leave the caches in the plan's
//! own state; a long product, [`LONG_PRODUCT`], takes one call per visit and a shorter
//! trial, [`TRIAL_LONG`]); the first round warms caches and is not counted, and each plan's cost is
//! the median of its other rounds' wall times (not the minimum: a split product's
//! typical round includes handing work to the other thread, and that is what training
//! pays). Then the cheapest plan is chosen for that signature, with one constraint
//! across signatures: whether products run split or as
//! one block is decided per pool size, on the sums over the pool's signatures explored
//! so far (see `record`), because a step that mixes the two moves the weights between
//! the cores' caches. A training run calls each of its few signatures thousands of
//! times, so exploring costs a few hundred calls each. The chosen plan's calls stay
//! timed, and every [`REVIEW_CALLS`] of them its mean is compared with the other plans
//! of its class: one cheaper by more than [`REVIEW_MARGIN`] replaces it (at most
//! [`MAX_REPLACEMENTS`] times), because a short visit does not show what a plan pays
//! in the steady loop for the state the step's other products leave.
//!
//! The choice never changes a bit, so it may depend on timing: the zero-skipping path
//! checks that `B` is all finite before it skips anything (a skipped `0 * inf` would be
//! NaN in the dense product), and the other two are the same FMA chains. What a choice
//! changes is only which kernel's path counters ([`crate::trace`]) move.
//!
//! Kept between processes: [`learned`] gives the decisions of this process (each with
//! the density class of `op(A)` it was measured on, [`density_class`]) and [`seed`]
//! hands a later process decisions an earlier one made on the same machine (the
//! harness keeps them in a file per CPU model). A seeded signature skips exploration
//! when its eligible plans and density class are those it was decided on; otherwise
//! it explores as usual. Bits are unaffected either way.
//!
//! `REGULAB_KERNEL_CHOICE` (read once) selects the policy: `measured` (the default),
//! `fixed` (the shape thresholds of module `dispatch`, the rule before this module:
//! for before/after timings) or `rotate` (every call takes the next eligible kernel,
//! for ever: for tests that every kernel gives the same bits inside one run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{Accumulate, Op};

/// The revision of the kernels' speeds that kept choices ([`learned`]) belong to: raised
/// when a change to a kernel or to this module makes choices made before it stale (the
/// harness files kept choices under it, so a raise discards them).
pub const CALIBRATION_REVISION: u32 = 1;

/// Rounds of exploration per signature: one warm-up round, then `ROUNDS - 1` timed.
/// Each round takes the candidates in a different order (rotated by the round), so a
/// periodic stall of the machine does not always fall on the same candidate.
pub const ROUNDS: usize = 6;

/// Consecutive calls a plan gets in each round of exploration; only the last is timed.
/// The earlier ones let the caches settle into the plan's own state: a split plan
/// leaves each core's share of the output in that core's cache, a one-block plan all of
/// it in one, and the next call (and the next product of the step, exploring in step)
/// pays for the state the previous plan left. Timing the first call of a visit charged
/// one plan for another's state and chose plans that were slow in the steady loop.
pub const STREAK: usize = 3;

/// A kernel [`super::gemm`] can run a product on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// matrixmultiply's packed `sgemm`, one call per block of the partition.
    Sgemm,
    /// The direct (no-packing) kernels, one call per block of the partition.
    Direct,
    /// The zero-skipping kernels (when `op(A)` is sparse enough and `B` finite; else
    /// the dense rule of `dispatch`).
    Sparse,
}

impl Kernel {
    /// A short name, as in the trace and the benches.
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Sgemm => "sgemm",
            Kernel::Direct => "direct",
            Kernel::Sparse => "sparse",
        }
    }
}

/// A kernel and how the product is split: over the blocks of `Partition::for_shape` in
/// the rayon pool (`split`), or as one block on the calling thread (a product too small
/// to repay waking another thread; on these virtual machines a wake-up costs tens of
/// microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    /// The kernel.
    pub kernel: Kernel,
    /// Whether the shape's blocks run in parallel (else one block, this thread).
    pub split: bool,
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kernel.as_str())?;
        if !self.split {
            f.write_str(" (one block)")?;
        }
        Ok(())
    }
}

/// How [`super::gemm`] picks a kernel (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Time the eligible kernels at first use of each signature, keep the fastest.
    Measured,
    /// The fixed shape thresholds of module `dispatch` (no timing).
    Fixed,
    /// Every call the next eligible kernel (tests).
    Rotate,
}

impl Choice {
    /// Parses `measured`, `fixed` or `rotate`.
    pub fn parse(s: &str) -> Option<Choice> {
        match s.trim() {
            "measured" => Some(Choice::Measured),
            "fixed" => Some(Choice::Fixed),
            "rotate" => Some(Choice::Rotate),
            _ => None,
        }
    }
}

/// 0: follow `REGULAB_KERNEL_CHOICE`; 1 + the policy's index otherwise ([`set_choice`]).
static CHOICE_OVERRIDE: AtomicU8 = AtomicU8::new(0);

/// The policy in force: [`set_choice`]'s, else `REGULAB_KERNEL_CHOICE` when first asked
/// (an unknown value panics, naming the variable and what it accepts), else measured.
pub fn choice() -> Choice {
    static ENV: OnceLock<Choice> = OnceLock::new();
    match CHOICE_OVERRIDE.load(Ordering::Relaxed) {
        1 => Choice::Measured,
        2 => Choice::Fixed,
        3 => Choice::Rotate,
        _ => *ENV.get_or_init(|| match std::env::var("REGULAB_KERNEL_CHOICE") {
            Ok(v) => Choice::parse(&v).unwrap_or_else(|| {
                panic!("REGULAB_KERNEL_CHOICE={v:?}: expected measured, fixed or rotate")
            }),
            Err(_) => Choice::Measured,
        }),
    }
}

/// Sets the policy for this whole process from now on (benchmarks that time several
/// policies in one run, tests). Never changes a result.
pub fn set_choice(c: Choice) {
    let v = match c {
        Choice::Measured => 1,
        Choice::Fixed => 2,
        Choice::Rotate => 3,
    };
    CHOICE_OVERRIDE.store(v, Ordering::Relaxed);
}

/// A product signature: what the timing of a kernel depends on, besides the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Whether `A` is transposed.
    pub trans_a: bool,
    /// Whether `B` is transposed.
    pub trans_b: bool,
    /// Whether `C` is added to.
    pub add: bool,
    /// Threads of the rayon pool the product runs in.
    pub threads: usize,
}

impl Key {
    pub(super) fn new(m: usize, n: usize, k: usize, ops: (Op, Op), acc: Accumulate) -> Key {
        Key {
            m,
            n,
            k,
            trans_a: ops.0 == Op::T,
            trans_b: ops.1 == Op::T,
            add: acc == Accumulate::Add,
            threads: rayon::current_num_threads(),
        }
    }
}

/// Most plans one signature can have: three kernels, split or not.
const MAX_PLANS: usize = 6;

/// The eligible plans of one signature, in the order exploration takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidates {
    list: [Plan; MAX_PLANS],
    len: usize,
}

impl Candidates {
    /// `sgemm` always, the direct and zero-skipping kernels where eligible; each split
    /// over the partition's blocks and, when the partition has several (`splits`), also
    /// as one block.
    pub fn new(direct: bool, sparse: bool, splits: bool) -> Candidates {
        let mut list = [Plan {
            kernel: Kernel::Sgemm,
            split: true,
        }; MAX_PLANS];
        let mut len = 0;
        for (ok, kernel) in [
            (true, Kernel::Sgemm),
            (direct, Kernel::Direct),
            (sparse, Kernel::Sparse),
        ] {
            for split in [true, false] {
                if ok && (split || splits) {
                    list[len] = Plan { kernel, split };
                    len += 1;
                }
            }
        }
        Candidates { list, len }
    }

    fn get(&self, i: usize) -> Plan {
        self.list[i % self.len]
    }

    /// The index of `plan` among the candidates.
    fn position(&self, plan: Plan) -> Option<usize> {
        self.list[..self.len].iter().position(|&p| p == plan)
    }

    /// The plans, in exploration order.
    pub fn plans(&self) -> &[Plan] {
        &self.list[..self.len]
    }

    /// The candidates listing `plans` in this order (as [`Candidates::plans`] gave
    /// them), or `None` for an empty list or more than six plans.
    pub fn from_plans(plans: &[Plan]) -> Option<Candidates> {
        if plans.is_empty() || plans.len() > MAX_PLANS {
            return None;
        }
        let mut c = Candidates::new(false, false, false);
        c.list[..plans.len()].copy_from_slice(plans);
        c.len = plans.len();
        Some(c)
    }
}

/// What is known of one signature.
#[derive(Clone, Debug)]
struct Entry {
    /// The group that decides split or one block together ([`group`]).
    group: Group,
    candidates: Candidates,
    /// Calls handed out so far (exploration takes candidate `calls % len`).
    calls: usize,
    /// Per candidate: its timed rounds so far (fixed arrays: recording a round never
    /// allocates, so training steps after the first allocate nothing).
    timed: [Rounds; MAX_PLANS],
    /// The winner, once every candidate has `ROUNDS - 1` timed rounds.
    chosen: Option<Plan>,
    /// Calls of the winner since, and their total time (reported: the steady cost).
    steady: (u32, Duration),
    /// After exploration, for a signature with both classes: the least-cost split plan
    /// and the least-cost one-block plan (indices [`SPLIT`], [`ONE`]).
    best: [Option<Plan>; 2],
    /// Trial calls handed out so far.
    trial_calls: usize,
    /// Per class: counted trial calls and their total time.
    trial: [(u32, Duration); 2],
    /// Calls per visit in exploration and per class in the trial ([`schedule`]).
    streak: usize,
    trial_len: usize,
    /// The density class of `op(A)` at the signature's first call ([`density_class`]).
    density: u8,
    /// Whether the plan was seeded ([`seed`]), not measured in this process.
    cached: bool,
    /// Per candidate: its calls and their total time while it was the chosen plan (the
    /// reviews compare these; a candidate chosen twice adds up both stints).
    steady_by: [(u32, Duration); MAX_PLANS],
    /// Steady calls between reviews ([`REVIEW_CALLS`], [`REVIEW_CALLS_LONG`]).
    review: u32,
    /// The last plan a review replaced, with its mean in the steady loop.
    replaced: Option<(Plan, Duration)>,
    /// Replacements so far ([`MAX_REPLACEMENTS`]).
    replacements: u8,
}

impl Entry {
    /// Counted trial calls per class once the trial is done.
    fn counted(&self) -> u32 {
        (self.trial_len - self.streak) as u32
    }
}

/// Index of the split class in [`Entry::best`] and [`Entry::trial`].
const SPLIT: usize = 0;
/// Index of the one-block class.
const ONE: usize = 1;

/// Calls per class in the trial that decides split or one block for a group; the
/// first [`STREAK`] of each class are not counted (the caches settle).
pub const TRIAL: usize = 24;

/// Products of at least this many multiply-adds (`m n k`) are long: a call takes
/// milliseconds (evaluation at batch 1000 of the lab's first layer, `1000 x 800 x 784`,
/// about 8 ms on one core), so the cache state another plan left is a small part of it,
/// and a few calls give a stable mean. They are explored one call per visit (every call
/// timed) and tried [`TRIAL_LONG`] calls per class (the first not counted), which cuts
/// their calibration from `ROUNDS x STREAK x plans + 2 x TRIAL` calls (156 with six
/// plans, about 1.5 s) to `ROUNDS x plans + 2 x TRIAL_LONG` (52).
pub const LONG_PRODUCT: usize = 1 << 29;

/// Trial calls per class for a long product ([`LONG_PRODUCT`]).
pub const TRIAL_LONG: usize = 8;

/// Steady calls of a chosen plan between two reviews of the choice ([`record`]): every
/// this many, its mean in the steady loop is compared with the other plans of its class.
pub const REVIEW_CALLS: u32 = 64;

/// Steady calls between reviews for a long product ([`LONG_PRODUCT`]).
pub const REVIEW_CALLS_LONG: u32 = 16;

/// A chosen plan is replaced when its mean in the steady loop exceeds another plan's
/// cost of the same class by more than this factor.
pub const REVIEW_MARGIN: f64 = 1.15;

/// Replacements per signature at most (a choice cannot swing for ever).
pub const MAX_REPLACEMENTS: u8 = 3;

/// Calls per visit in exploration and calls per class in the trial for `key`: [`STREAK`]
/// and [`TRIAL`], or 1 and [`TRIAL_LONG`] for a long product.
fn schedule(key: &Key) -> (usize, usize) {
    let mnk = key.m.saturating_mul(key.n).saturating_mul(key.k);
    if mnk >= LONG_PRODUCT {
        (1, TRIAL_LONG)
    } else {
        (STREAK, TRIAL)
    }
}

/// Signatures whose products decide split or one block together: the pool size and
/// the batch (the rows of `op(A)`, or the inner dimension when `A` is transposed, as
/// in a weight gradient `X^T D`). So the products of one training step decide
/// together, and evaluation at another batch size decides apart.
type Group = (usize, usize);

fn group(key: &Key) -> Group {
    (key.threads, if key.trans_a { key.k } else { key.m })
}

/// The signatures and the groups' decisions (split: `true`), and the decisions seeded
/// from earlier processes ([`seed`]), by signature and density class.
struct Table {
    entries: HashMap<Key, Entry>,
    groups: HashMap<Group, bool>,
    seeds: HashMap<(Key, u8), (Candidates, Plan)>,
}

/// The `round` of a ticket for a call after the choice (timed for the report only).
const STEADY: usize = usize::MAX;

/// The timed rounds of one candidate.
#[derive(Clone, Copy, Debug, Default)]
struct Rounds {
    len: usize,
    times: [Duration; ROUNDS - 1],
}

impl Rounds {
    fn push(&mut self, d: Duration) {
        if self.len < self.times.len() {
            self.times[self.len] = d;
            self.len += 1;
        }
    }
}

/// The cost of a candidate: the median of its timed rounds (upper median). Not the
/// minimum: a split product's best round is one where no wake-up was slow, and the
/// typical round is what training pays.
fn cost(rounds: &Rounds) -> Option<Duration> {
    let mut v = rounds.times;
    let v = &mut v[..rounds.len];
    v.sort();
    v.get(v.len() / 2).copied()
}

/// Signatures the table holds before it first grows (a run has a handful; evaluation
/// adds one per distinct last-batch size), so that a new signature after the first
/// minibatch does not allocate either.
const TABLE_CAPACITY: usize = 256;

fn table() -> &'static Mutex<Table> {
    static T: OnceLock<Mutex<Table>> = OnceLock::new();
    T.get_or_init(|| {
        Mutex::new(Table {
            entries: HashMap::with_capacity(TABLE_CAPACITY),
            groups: HashMap::with_capacity(TABLE_CAPACITY),
            seeds: HashMap::new(),
        })
    })
}

fn lock() -> std::sync::MutexGuard<'static, Table> {
    // A panic while the table is held cannot leave an entry half-updated in a way that
    // matters (any kernel gives the same bits), so a poisoned table is used as is.
    table().lock().unwrap_or_else(|e| e.into_inner())
}

/// A kernel handed out for one call during exploration, to be timed ([`record`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ticket {
    key: Key,
    slot: usize,
    round: usize,
}

/// The `round` of a ticket for a counted trial call (its `slot` is the class).
const TRIAL_ROUND: usize = usize::MAX - 1;

/// The kernel for one call of signature `key` under policy `choice` (`Fixed` is
/// decided by the caller and never comes here), and a ticket when the call is to be
/// timed.
///
/// `density` gives the density class of `op(A)` ([`density_class`]); it is called once,
/// at the signature's first call, where a seeded decision ([`seed`]) for the signature,
/// that class and these candidates skips the phases below.
///
/// A signature goes through up to three phases: exploration (every plan in turn, see
/// the module doc); for a signature with split and one-block plans, a trial of its
/// best plan of each class, [`TRIAL`] calls each, until its group ([`group`]) has
/// decided between the classes (see [`record`]); then its chosen plan for good.
pub(super) fn pick(
    key: Key,
    candidates: Candidates,
    choice: Choice,
    density: impl FnOnce() -> u8,
) -> (Plan, Option<Ticket>) {
    if candidates.len == 1 {
        return (candidates.list[0], None);
    }
    let mut guard = lock();
    let Table {
        entries,
        groups,
        seeds,
    } = &mut *guard;
    let e = entries.entry(key).or_insert_with(|| {
        let (streak, trial_len) = schedule(&key);
        let density = density();
        let seeded = seeds
            .get(&(key, density))
            .filter(|(c, _)| c.plans() == candidates.plans() && choice == Choice::Measured)
            .map(|&(_, plan)| plan);
        let review = if streak == 1 {
            REVIEW_CALLS_LONG
        } else {
            REVIEW_CALLS
        };
        Entry {
            group: group(&key),
            candidates,
            calls: 0,
            timed: Default::default(),
            chosen: seeded,
            steady: (0, Duration::ZERO),
            best: [None; 2],
            trial_calls: 0,
            trial: [(0, Duration::ZERO); 2],
            streak,
            trial_len,
            density,
            cached: seeded.is_some(),
            steady_by: [(0, Duration::ZERO); MAX_PLANS],
            review,
            replaced: None,
            replacements: 0,
        }
    });
    let call = e.calls;
    e.calls = e.calls.wrapping_add(1);
    if choice == Choice::Rotate {
        return (e.candidates.get(call), None);
    }
    if e.chosen.is_none()
        && let (Some(&split), [Some(s), Some(o)]) = (groups.get(&e.group), e.best)
    {
        e.chosen = Some(if split { s } else { o });
    }
    if let Some(k) = e.chosen {
        let steady = Ticket {
            key,
            slot: e.candidates.position(k).unwrap_or(0),
            round: STEADY,
        };
        return (k, Some(steady));
    }
    if let [Some(s), Some(o)] = e.best {
        // the trial: TRIAL (TRIAL_LONG) calls on the best split plan, then as many on
        // the best one-block plan; then, until the group decides, the cheaper of the two
        let t = e.trial_calls;
        e.trial_calls = e.trial_calls.saturating_add(1);
        let class = match t / e.trial_len {
            0 => SPLIT,
            1 => ONE,
            _ => {
                let mean = |(n, d): (u32, Duration)| d / n.max(1);
                let cheaper = mean(e.trial[SPLIT]) <= mean(e.trial[ONE]);
                return (if cheaper { s } else { o }, None);
            }
        };
        let plan = if class == SPLIT { s } else { o };
        if t % e.trial_len < e.streak {
            return (plan, None);
        }
        let ticket = Ticket {
            key,
            slot: class,
            round: TRIAL_ROUND,
        };
        return (plan, Some(ticket));
    }
    let visit = call / e.streak;
    let round = visit / e.candidates.len;
    let slot = (visit + round) % e.candidates.len;
    let plan = e.candidates.get(slot);
    if call % e.streak != e.streak - 1 {
        return (plan, None); // settling the caches for this plan
    }
    (plan, Some(Ticket { key, slot, round }))
}

/// Records the wall time of a timed call; a steady call of the chosen plan may bring a
/// review of the choice ([`Entry::review_choice`]). Once every candidate has its timed rounds,
/// a signature with one class fixes its plan (the least cost, [`cost`], wins; ties go
/// to the earlier candidate, `sgemm` first); one with both keeps its best plan of each
/// class for the trial, or takes its group's decision if there is one.
///
/// Split or one block is decided per group, not per product, from the trial: once
/// every signature of the group that is past exploration has its trial calls, the
/// class with the least sum of mean trial times over them wins, for all of them and
/// for the group's later signatures. Why a group: a step that mixes the classes loses
/// to both (when the forward product runs split and the weight gradient on one core,
/// the weights cross between the cores' caches twice a step; measured at batch 10 on
/// two threads: 23k examples/s mixed against 31-34k either way). Why a trial of
/// consecutive calls: the exploration's short visits did not show that cost, and
/// chose split plans that were 20-70 % slower in the steady loop than in exploration.
pub(super) fn record(ticket: Ticket, elapsed: Duration) {
    if ticket.round == 0 {
        return; // warm-up
    }
    let mut guard = lock();
    let Table {
        entries, groups, ..
    } = &mut *guard;
    let Some(e) = entries.get_mut(&ticket.key) else {
        return;
    };
    match ticket.round {
        STEADY => {
            e.steady.0 = e.steady.0.saturating_add(1);
            e.steady.1 = e.steady.1.saturating_add(elapsed);
            let (n, d) = &mut e.steady_by[ticket.slot % MAX_PLANS];
            *n = n.saturating_add(1);
            *d = d.saturating_add(elapsed);
            if *n % e.review == 0 && e.replacements < MAX_REPLACEMENTS {
                e.review_choice();
            }
            return;
        }
        TRIAL_ROUND => {
            let (n, d) = &mut e.trial[ticket.slot];
            *n = n.saturating_add(1);
            *d = d.saturating_add(elapsed);
        }
        _ if e.chosen.is_some() || e.best[SPLIT].is_some() => return,
        _ => {
            e.timed[ticket.slot].push(elapsed);
            if !e.explored() {
                return;
            }
            let least = |split: Option<bool>| {
                (0..e.candidates.len)
                    .filter(|&i| split.is_none_or(|s| e.candidates.get(i).split == s))
                    .min_by_key(|&i| cost(&e.timed[i]))
                    .map(|i| e.candidates.get(i))
            };
            if e.has_both_classes() {
                e.best = [least(Some(true)), least(Some(false))];
                if let Some(&split) = groups.get(&e.group) {
                    e.chosen = e.best[if split { SPLIT } else { ONE }];
                }
            } else {
                e.chosen = least(None);
            }
            return;
        }
    }
    // a trial call: decide the group once all its signatures in trial are done
    let g = e.group;
    if groups.contains_key(&g) {
        return;
    }
    let in_group = || {
        entries
            .values()
            .filter(move |o| o.group == g && o.best[SPLIT].is_some())
    };
    if !in_group().all(|o| o.trial.iter().all(|&(n, _)| n >= o.counted())) {
        return;
    }
    let mean = |(n, d): (u32, Duration)| d / n.max(1);
    let (split, one) = in_group().fold((Duration::ZERO, Duration::ZERO), |(s, o), e| {
        (
            s.saturating_add(mean(e.trial[SPLIT])),
            o.saturating_add(mean(e.trial[ONE])),
        )
    });
    let split_wins = split <= one;
    groups.insert(g, split_wins);
    for e in entries.values_mut().filter(|o| o.group == g) {
        if let [Some(s), Some(o)] = e.best {
            e.chosen = Some(if split_wins { s } else { o });
        }
    }
}

impl Entry {
    /// Reviews the chosen plan against the other plans of its class (split or one
    /// block: the group's decision stands): each is estimated by its own mean in the
    /// steady loop once it has [`Entry::review`] calls there, else by its exploration
    /// cost. When the least estimate times [`REVIEW_MARGIN`] is below the chosen
    /// plan's steady mean, that plan replaces it.
    ///
    /// Why: exploration times a plan in short visits, and some plans pay in the steady
    /// loop for the state the step's other products leave (measured on an AMD EPYC
    /// with AVX-512: the batch-10 forward product on two threads, zero-skipping 36.8 us
    /// in exploration and 47.3 us in the steady loop, against the direct kernel's 37.9
    /// and 29; the choice fell either way between runs). A replacement never changes a
    /// bit. A signature seeded from an earlier process has no exploration costs and no
    /// other plan's steady mean, so it is never replaced.
    fn review_choice(&mut self) {
        let Some(cur) = self.chosen else { return };
        let Some(slot) = self.candidates.position(cur) else {
            return;
        };
        let mean = |(n, d): (u32, Duration)| (n > 0).then(|| d / n);
        let Some(now) = mean(self.steady_by[slot]) else {
            return;
        };
        let estimate = |i: usize| {
            if self.steady_by[i].0 >= self.review {
                mean(self.steady_by[i])
            } else {
                cost(&self.timed[i])
            }
        };
        let best = (0..self.candidates.len)
            .filter(|&i| i != slot && self.candidates.get(i).split == cur.split)
            .filter_map(|i| estimate(i).map(|d| (d, i)))
            .min();
        if let Some((d, i)) = best
            && d.as_secs_f64() * REVIEW_MARGIN < now.as_secs_f64()
        {
            self.replaced = Some((cur, now));
            self.chosen = Some(self.candidates.get(i));
            self.replacements += 1;
            self.steady = (0, Duration::ZERO);
        }
    }

    /// Whether every candidate has its timed rounds.
    fn explored(&self) -> bool {
        self.timed[..self.candidates.len]
            .iter()
            .all(|t| t.len >= ROUNDS - 1)
    }

    /// Whether the candidates include split and one-block plans.
    fn has_both_classes(&self) -> bool {
        let plans = || (0..self.candidates.len).map(|i| self.candidates.get(i));
        plans().any(|p| p.split) && plans().any(|p| !p.split)
    }
}

/// One signature's state, for reports and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The signature.
    pub key: Key,
    /// The eligible plans and their cost so far (the median of the timed rounds;
    /// `None`: not yet timed).
    pub costs: Vec<(Plan, Option<Duration>)>,
    /// The plan fixed for the rest of the process, once exploration is over.
    pub chosen: Option<Plan>,
    /// The mean time of the chosen plan's calls since, and how many (`None`: none yet).
    pub steady: Option<(Duration, u32)>,
    /// The trial's mean times of the best split and the best one-block plan (`None`
    /// for a signature with one class, or before its trial has counted calls of both).
    pub trial: Option<(Duration, Duration)>,
    /// Whether `chosen` was seeded from an earlier process ([`seed`]).
    pub cached: bool,
    /// The last plan a review of the steady loop replaced (see [`record`]), with its
    /// mean time there.
    pub replaced: Option<(Plan, Duration)>,
}

impl std::fmt::Display for Decision {
    /// E.g. `100x800x784 NN overwrite, 2 threads: direct (sgemm 812us, direct 790us)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.key;
        let op = |t: bool| if t { 'T' } else { 'N' };
        write!(
            f,
            "{}x{}x{} {}{} {}, {} thread{}: {}",
            k.m,
            k.n,
            k.k,
            op(k.trans_a),
            op(k.trans_b),
            if k.add { "add" } else { "overwrite" },
            k.threads,
            if k.threads == 1 { "" } else { "s" },
            self.chosen
                .map_or_else(|| "exploring".to_string(), |p| p.to_string())
        )?;
        if self.cached {
            return f.write_str(", cached (decided by an earlier process on this CPU model)");
        }
        let costs: Vec<String> = self
            .costs
            .iter()
            .map(|(plan, d)| match d {
                Some(d) => format!("{plan} {d:?}"),
                None => format!("{plan} untimed"),
            })
            .collect();
        write!(f, " ({})", costs.join(", "))?;
        if let Some((split, one)) = self.trial {
            write!(f, "; trial: split {split:?}, one block {one:?}")?;
        }
        if let Some((plan, mean)) = self.replaced {
            write!(f, "; replaced {plan} ({mean:?} mean in the steady loop)")?;
        }
        if let Some((mean, n)) = self.steady {
            write!(f, "; since: {mean:?} mean over {n} calls")?;
        }
        Ok(())
    }
}

/// Every signature seen so far in this process, in no particular order.
pub fn decisions() -> Vec<Decision> {
    lock()
        .entries
        .iter()
        .map(|(key, e)| Decision {
            key: *key,
            costs: (0..e.candidates.len)
                .map(|i| (e.candidates.get(i), cost(&e.timed[i])))
                .collect(),
            chosen: e.chosen,
            steady: (e.steady.0 > 0).then(|| (e.steady.1 / e.steady.0, e.steady.0)),
            trial: {
                let [(ns, ds), (no, d_o)] = e.trial;
                (ns > 0 && no > 0).then(|| (ds / ns, d_o / no))
            },
            cached: e.cached,
            replaced: e.replaced,
        })
        .collect()
}

/// The density class of an operand: its share of nonzero entries in tenths, rounded
/// down (`0..=10`). Zero-skipping's cost depends on it, so decisions are kept per class.
pub fn density_class(a: &[f32]) -> u8 {
    if a.is_empty() {
        return 10;
    }
    let nonzero = a.iter().filter(|x| **x != 0.0).count();
    // nonzero <= len, so the class is at most 10
    u8::try_from(nonzero * 10 / a.len()).unwrap_or(10)
}

/// A decided signature, to be kept for later processes on the same machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    /// The signature.
    pub key: Key,
    /// The density class of `op(A)` it was decided on ([`density_class`]).
    pub density: u8,
    /// Its eligible plans, in exploration order.
    pub candidates: Vec<Plan>,
    /// The plan chosen.
    pub chosen: Plan,
}

/// A group's split decision (see [`record`]): the pool size, the batch (rows of `op(A)`,
/// or the inner dimension when `A` is transposed) and whether its products run split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupChoice {
    /// Threads of the pool.
    pub threads: usize,
    /// The batch.
    pub batch: usize,
    /// Split (else one block).
    pub split: bool,
}

/// What this process has decided (or was seeded with): every signature with a chosen
/// plan, and every group's split decision, in a stable order.
pub fn learned() -> (Vec<Learned>, Vec<GroupChoice>) {
    let t = lock();
    let mut plans: Vec<Learned> = t
        .entries
        .iter()
        .filter_map(|(key, e)| {
            Some(Learned {
                key: *key,
                density: e.density,
                candidates: e.candidates.plans().to_vec(),
                chosen: e.chosen?,
            })
        })
        .collect();
    let order = |l: &Learned| {
        let k = l.key;
        (
            k.threads, k.m, k.n, k.k, k.trans_a, k.trans_b, k.add, l.density,
        )
    };
    plans.sort_by_key(order);
    let mut groups: Vec<GroupChoice> = t
        .groups
        .iter()
        .map(|(&(threads, batch), &split)| GroupChoice {
            threads,
            batch,
            split,
        })
        .collect();
    groups.sort_by_key(|g| (g.threads, g.batch));
    (plans, groups)
}

/// Seeds this process with decisions an earlier one made on this machine ([`learned`]):
/// a signature first called after this, with the same density class and eligible plans,
/// takes its seeded plan without exploring; a group's split decision applies to the
/// group's signatures decided here after this. A seeded plan that is not among its own
/// candidates, or candidates that are not a valid list, are ignored. Signatures
/// already called in this process keep their state.
pub fn seed(plans: &[Learned], groups: &[GroupChoice]) {
    let mut t = lock();
    for l in plans {
        let Some(c) = Candidates::from_plans(&l.candidates) else {
            continue;
        };
        if c.plans().contains(&l.chosen) {
            t.seeds.insert((l.key, l.density), (c, l.chosen));
        }
    }
    for g in groups {
        t.groups.entry((g.threads, g.batch)).or_insert(g.split);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: usize) -> Key {
        Key {
            m,
            n: 7,
            k: 5,
            trans_a: false,
            trans_b: true,
            add: false,
            threads: 1,
        }
    }

    /// Exploration hands the candidates out in turn, [`STREAK`] calls each with the last
    /// timed, ignores the warm-up round, and
    /// fixes the one of least median cost once each has its timed rounds; later calls
    /// get it untimed.
    #[test]
    fn exploration_picks_the_least_median_cost_after_the_timed_rounds() {
        let k = key(1_000_003);
        let cands = Candidates::new(true, true, false);
        let us = Duration::from_micros;
        let cost = |kernel: Kernel, round: usize| match (kernel, round) {
            (_, 0) => us(1), // warm-up: would win if counted
            (Kernel::Sgemm, _) => us(30),
            (Kernel::Direct, 2) => us(5), // one lucky round: not its median
            (Kernel::Direct, _) => us(40),
            (Kernel::Sparse, 3) => us(90), // one slow round: not its median
            (Kernel::Sparse, _) => us(20),
        };
        let mut seen = Vec::new();
        for visit in 0..ROUNDS * 3 {
            for call in 0..STREAK {
                let (plan, ticket) = pick(k, cands, Choice::Measured, || 0);
                assert!(plan.split);
                if call + 1 < STREAK {
                    assert!(ticket.is_none(), "only a visit's last call is timed");
                    continue;
                }
                let ticket = ticket.expect("a visit's last call is timed");
                assert_eq!(ticket.round, visit / 3);
                seen.push(plan.kernel);
                record(ticket, cost(plan.kernel, ticket.round));
            }
        }
        assert_eq!(&seen[..3], &[Kernel::Sgemm, Kernel::Direct, Kernel::Sparse]);
        // the next round starts one further on
        assert_eq!(
            &seen[3..6],
            &[Kernel::Direct, Kernel::Sparse, Kernel::Sgemm]
        );
        let d = decisions().into_iter().find(|d| d.key == k).unwrap();
        let sparse = Plan {
            kernel: Kernel::Sparse,
            split: true,
        };
        assert_eq!(d.chosen, Some(sparse), "{d:?}");
        assert_eq!(d.costs[1].1, Some(us(40)));
        for _ in 0..5 {
            let (plan, ticket) = pick(k, cands, Choice::Measured, || 0);
            // timed only for the report of the steady cost
            assert_eq!((plan, ticket.map(|t| t.round)), (sparse, Some(STEADY)));
        }
    }

    /// The steady loop reviews a choice every [`REVIEW_CALLS`] calls: a chosen plan whose
    /// mean there exceeds another plan's cost (its own steady mean once it has one, else
    /// its exploration cost) by more than [`REVIEW_MARGIN`] is replaced, at most
    /// [`MAX_REPLACEMENTS`] times; within the margin it stays.
    #[test]
    fn the_steady_loop_replaces_a_plan_slower_than_its_exploration_said() {
        let k = key(1_000_011);
        let cands = Candidates::new(true, true, false);
        let us = Duration::from_micros;
        let explored = |kernel: Kernel| match kernel {
            Kernel::Sgemm => us(30),
            Kernel::Direct => us(25),
            Kernel::Sparse => us(20),
        };
        while decisions()
            .into_iter()
            .find(|d| d.key == k)
            .and_then(|d| d.chosen)
            .is_none()
        {
            let (plan, ticket) = pick(k, cands, Choice::Measured, || 0);
            if let Some(t) = ticket {
                record(t, explored(plan.kernel));
            }
        }
        let plan = |kernel| Plan {
            kernel,
            split: true,
        };
        // `calls` steady calls taking `took` each; the plan they ran on
        let steady = |calls: u32, took: Duration| {
            let mut ran = None;
            for _ in 0..calls {
                let (p, t) = pick(k, cands, Choice::Measured, || 0);
                let t = t.expect("steady calls are timed");
                assert_eq!(t.round, STEADY);
                assert!(
                    ran.is_none_or(|r| r == p),
                    "the plan changes only at a review"
                );
                ran = Some(p);
                record(t, took);
            }
            ran.unwrap()
        };
        let chosen = || decisions().into_iter().find(|d| d.key == k).unwrap();
        assert_eq!(chosen().chosen, Some(plan(Kernel::Sparse)));
        // within the margin of direct's 25 us: stays
        assert_eq!(steady(REVIEW_CALLS, us(28)), plan(Kernel::Sparse));
        assert_eq!(chosen().chosen, Some(plan(Kernel::Sparse)));
        assert_eq!(chosen().replaced, None);
        // its mean passes 1.15 x 25 us: direct replaces it at the next review
        steady(REVIEW_CALLS, us(40));
        let d = chosen();
        assert_eq!(d.chosen, Some(plan(Kernel::Direct)), "{d}");
        assert_eq!(d.replaced, Some((plan(Kernel::Sparse), us(34))));
        assert!(
            d.to_string()
                .contains("replaced sparse (34µs mean in the steady loop)"),
            "{d}"
        );
        // direct at 35 us: sgemm's 30 us (explored) x 1.15 = 34.5 is less
        assert_eq!(steady(REVIEW_CALLS, us(35)), plan(Kernel::Direct));
        assert_eq!(chosen().chosen, Some(plan(Kernel::Sgemm)));
        // sgemm at 100 us: the least is now a steady mean, sparse's 34 us (direct's is 35)
        steady(REVIEW_CALLS, us(100));
        assert_eq!(chosen().chosen, Some(plan(Kernel::Sparse)));
        // three replacements: no more, however slow
        steady(3 * REVIEW_CALLS, us(500));
        assert_eq!(chosen().chosen, Some(plan(Kernel::Sparse)));
    }

    /// A signature with one eligible plan is never timed; rotation cycles for ever;
    /// products with several blocks also try one block.
    #[test]
    fn single_candidates_are_not_timed_and_rotation_cycles() {
        let (plan, ticket) = pick(
            key(1_000_004),
            Candidates::new(false, false, false),
            Choice::Measured,
            || 0,
        );
        assert_eq!(
            (plan.kernel, plan.split, ticket.is_none()),
            (Kernel::Sgemm, true, true)
        );
        let cands = Candidates::new(false, true, false);
        let got: Vec<Kernel> = (0..5)
            .map(|_| pick(key(1_000_005), cands, Choice::Rotate, || 0).0.kernel)
            .collect();
        use Kernel::{Sgemm as G, Sparse as S};
        assert_eq!(got, [G, S, G, S, G]);
        let all = Candidates::new(true, true, true);
        let plans: Vec<String> = (0..all.len).map(|i| all.get(i).to_string()).collect();
        assert_eq!(
            plans,
            [
                "sgemm",
                "sgemm (one block)",
                "direct",
                "direct (one block)",
                "sparse",
                "sparse (one block)"
            ]
        );
    }

    /// Runs `calls` calls of `k` through pick and record, timing a split plan `split`
    /// and a one-block plan `one` (exploration and trial alike unless `trial` is given:
    /// then the trial calls take those times instead).
    fn drive(k: Key, calls: usize, (split, one): (u64, u64), trial: Option<(u64, u64)>) {
        let cands = Candidates::new(true, false, true);
        for _ in 0..calls {
            let (plan, ticket) = pick(k, cands, Choice::Measured, || 0);
            if let Some(t) = ticket {
                let (s, o) = match (t.round, trial) {
                    (TRIAL_ROUND, Some(tr)) => tr,
                    _ => (split, one),
                };
                record(t, Duration::from_micros(if plan.split { s } else { o }));
            }
        }
    }

    fn chosen(k: Key) -> Option<Plan> {
        decisions()
            .into_iter()
            .find(|d| d.key == k)
            .and_then(|d| d.chosen)
    }

    /// Split or one block is one decision per group (pool size and batch), taken on the
    /// trial's means summed over the group, not on exploration: two signatures of a
    /// batch whose exploration favours split but whose trial (the steady loop) favours
    /// one block settle on one block together, only when both trials are done; a later
    /// signature of the group follows; another batch decides on its own.
    #[test]
    fn the_split_decision_is_taken_per_group_on_the_trial() {
        let sig = |m: usize, trans_a: bool, k: usize| Key {
            threads: 7,
            trans_a,
            k,
            ..key(m)
        };
        // the batch is 10_000_001: rows of A, or the inner dimension of a transposed A
        let (fwd, wgrad) = (sig(10_000_001, false, 5), sig(3, true, 10_000_001));
        let explore = ROUNDS * STREAK * 4;
        drive(fwd, explore, (90, 100), None);
        drive(wgrad, explore, (90, 100), None);
        assert_eq!((chosen(fwd), chosen(wgrad)), (None, None), "in trial");
        // fwd's trial alone: split slightly better; the group waits for wgrad's
        drive(fwd, 2 * TRIAL, (0, 0), Some((95, 100)));
        assert_eq!(chosen(fwd), None, "the group waits for every trial");
        drive(wgrad, 2 * TRIAL, (0, 0), Some((300, 150)));
        // sums: split 95 + 300 = 395 us, one block 100 + 150 = 250 us
        assert!(!chosen(fwd).expect("decided").split);
        assert!(!chosen(wgrad).expect("decided").split);
        // a later signature of the group takes the decision after its exploration
        let late = sig(10_000_001, false, 9);
        drive(late, explore, (50, 100), None);
        assert!(!chosen(late).expect("the group's decision").split);
        // another batch: its own trial, split
        let other = sig(10_000_002, false, 5);
        drive(other, explore + 2 * TRIAL, (90, 100), None);
        assert!(chosen(other).expect("decided").split);
        let d = decisions().into_iter().find(|d| d.key == fwd).unwrap();
        assert_eq!(
            d.trial,
            Some((Duration::from_micros(95), Duration::from_micros(100)))
        );
        assert!(d.to_string().contains("trial: split 95"), "{d}");
    }

    #[test]
    fn choice_names_parse() {
        assert_eq!(Choice::parse(" rotate"), Some(Choice::Rotate));
        assert_eq!(Choice::parse("fixed"), Some(Choice::Fixed));
        assert_eq!(Choice::parse("measured"), Some(Choice::Measured));
        assert_eq!(Choice::parse("fast"), None);
    }

    /// A long product (at least [`LONG_PRODUCT`] multiply-adds) is explored one timed
    /// call per visit and tried [`TRIAL_LONG`] calls per class (the first not counted),
    /// then decided like any other.
    #[test]
    fn long_products_are_explored_call_by_call_with_a_short_trial() {
        let long = Key {
            m: 1 << 10,
            n: 1 << 10,
            k: 1 << 9,
            threads: 9,
            ..key(1)
        };
        assert_eq!(schedule(&long), (1, TRIAL_LONG));
        assert_eq!(schedule(&key(1_000_003)), (STREAK, TRIAL));
        let cands = Candidates::new(true, false, true);
        // exploration: every call timed
        for call in 0..ROUNDS * cands.len {
            let (plan, ticket) = pick(long, cands, Choice::Measured, || 0);
            let t = ticket.expect("every exploration call of a long product is timed");
            assert_eq!(t.round, call / cands.len);
            let us = if plan.split { 90 } else { 100 };
            record(t, Duration::from_micros(us));
        }
        assert_eq!(chosen(long), None, "in trial");
        // the trial: TRIAL_LONG calls per class, the first of each not counted
        drive(long, 2 * TRIAL_LONG - 1, (0, 0), Some((120, 100)));
        assert_eq!(chosen(long), None, "one counted call short");
        drive(long, 1, (0, 0), Some((120, 100)));
        let d = decisions().into_iter().find(|d| d.key == long).unwrap();
        assert!(!d.chosen.expect("decided").split, "{d}");
        assert_eq!(
            d.trial,
            Some((Duration::from_micros(120), Duration::from_micros(100)))
        );
    }

    /// A seeded decision ([`seed`]) is taken at once for its signature, density class
    /// and candidates (no exploration, reported as cached); another class, other
    /// candidates, a plan outside its candidates or the rotate policy explore as usual;
    /// a seeded group decision decides a signature of the group after its exploration;
    /// [`learned`] gives back seeded and measured decisions.
    #[test]
    fn seeded_decisions_skip_exploration_only_where_they_apply() {
        let sig = |m: usize| Key {
            threads: 11,
            ..key(m)
        };
        let all = Candidates::new(true, true, true);
        let one_direct = Plan {
            kernel: Kernel::Direct,
            split: false,
        };
        let learned_as = |k: Key, density: u8, c: &Candidates, chosen: Plan| Learned {
            key: k,
            density,
            candidates: c.plans().to_vec(),
            chosen,
        };
        let no_sparse = Candidates::new(true, false, true);
        let (hit, other_class, other_cands, outside, rotated) = (
            sig(20_001),
            sig(20_002),
            sig(20_003),
            sig(20_004),
            sig(20_005),
        );
        let sparse = Plan {
            kernel: Kernel::Sparse,
            split: true,
        };
        seed(
            &[
                learned_as(hit, 3, &all, one_direct),
                learned_as(other_class, 3, &all, one_direct),
                learned_as(other_cands, 3, &no_sparse, one_direct),
                learned_as(outside, 3, &no_sparse, sparse),
                learned_as(rotated, 3, &all, one_direct),
            ],
            &[GroupChoice {
                threads: 12,
                batch: 20_006,
                split: false,
            }],
        );
        let mut asked = 0;
        let (plan, ticket) = pick(hit, all, Choice::Measured, || {
            asked += 1;
            3
        });
        assert_eq!((plan, ticket.map(|t| t.round)), (one_direct, Some(STEADY)));
        let (plan, _) = pick(hit, all, Choice::Measured, || unreachable!("asked once"));
        assert_eq!((plan, asked), (one_direct, 1));
        let d = decisions().into_iter().find(|d| d.key == hit).unwrap();
        assert!(d.cached && d.to_string().contains("cached"), "{d}");
        // no other plan has a cost here: however slow its steady calls, it stays
        for _ in 0..2 * REVIEW_CALLS {
            let (plan, ticket) = pick(hit, all, Choice::Measured, || unreachable!());
            assert_eq!(plan, one_direct);
            record(ticket.unwrap(), Duration::from_secs(1));
        }
        let d = decisions().into_iter().find(|d| d.key == hit).unwrap();
        assert_eq!((d.chosen, d.replaced), (Some(one_direct), None));
        // the first call of an exploring signature: the first candidate, untimed
        let exploring = |k: Key, c: Candidates, density: u8, choice: Choice| {
            let (plan, ticket) = pick(k, c, choice, || density);
            let d = decisions().into_iter().find(|d| d.key == k).unwrap();
            (plan, ticket.is_none(), d.chosen, d.cached)
        };
        let first = Plan {
            kernel: Kernel::Sgemm,
            split: true,
        };
        let explores = (first, true, None, false);
        assert_eq!(exploring(other_class, all, 5, Choice::Measured), explores);
        assert_eq!(exploring(other_cands, all, 3, Choice::Measured), explores);
        assert_eq!(exploring(outside, no_sparse, 3, Choice::Measured), explores);
        assert_eq!(exploring(rotated, all, 3, Choice::Rotate), explores);
        // the seeded group: one block after exploration, with no trial
        let grouped = Key {
            threads: 12,
            ..key(20_006)
        };
        drive(grouped, ROUNDS * STREAK * 4, (50, 100), None);
        assert!(!chosen(grouped).expect("the seeded group decides").split);
        let (plans, groups) = learned();
        let got = plans
            .iter()
            .find(|l| l.key == hit)
            .expect("seeded, learned");
        assert_eq!(got, &learned_as(hit, 3, &all, one_direct));
        let got = plans
            .iter()
            .find(|l| l.key == grouped)
            .expect("measured, learned");
        assert_eq!((got.density, got.chosen), (0, chosen(grouped).unwrap()));
        assert!(plans.iter().all(|l| l.key != other_class), "undecided");
        assert!(groups.contains(&GroupChoice {
            threads: 12,
            batch: 20_006,
            split: false
        }));
    }

    #[test]
    fn density_classes_are_tenths_rounded_down() {
        assert_eq!(density_class(&[0.0, 0.0, 1.0, -2.0]), 5);
        assert_eq!(density_class(&[0.0, -0.0, 0.0]), 0);
        assert_eq!(density_class(&[1.0; 7]), 10);
        assert_eq!(density_class(&[1.0, 0.0, 0.0]), 3);
        assert_eq!(density_class(&[]), 10);
    }
}
