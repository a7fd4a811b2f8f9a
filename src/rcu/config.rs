//! [`DomainBuilder`]: how much garbage a domain lets wait, and how long a
//! retiring thread may be held back when there is more.
//!
//! # Invariant
//!
//! A domain's configuration is fixed when it is built (the global domain's
//! is [`Config::DEFAULT`]); the grace-period machine reads it without
//! synchronization.

use core::time::Duration;

use crate::rcu::stall::{Stall, StallHook};

/// A domain's limits (see [`DomainBuilder`] for what each one means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// Registered objects of the domain not freed yet, past which a
    /// retirement applies backpressure (`usize::MAX`: never).
    pub(crate) max_pending: usize,
    /// The same, for the objects retired through each owner of the domain.
    pub(crate) owner_max_pending: usize,
    /// The longest a retirement past the bound waits for a grace period.
    pub(crate) max_wait: Duration,
    /// Objects pending in one queue (the domain's own, or one owner's) past
    /// which a retirement that finds nothing to free waits for the grace
    /// period a reader holds up (`usize::MAX`: never).
    pub(crate) soft_max_pending: usize,
    /// The longest that wait lasts.
    pub(crate) soft_max_wait: Duration,
    /// Whether retiring threads run destructors (the amortized free, and
    /// the inline free of backpressure).
    pub(crate) retiring_threads_free: bool,
    /// Whether the process-wide reclaimer serves the domain.
    pub(crate) reclaimer: bool,
    /// How long retired work may wait before the reclaimer starts its
    /// grace period.
    pub(crate) time_bound: Duration,
    /// Grace periods start only by rationing (no pacing), and thread
    /// buffers always take 128 objects.
    pub(crate) lazy: bool,
    /// How long a reader may hold a grace period up before it is reported
    /// (`None`: never).
    pub(crate) stall_timeout: Option<Duration>,
    /// Whether objects retired with a birth may be freed ahead of their
    /// grace period (module `robust`).
    pub(crate) robust: bool,
}

impl Config {
    /// The defaults of [`Domain::new`](crate::Domain::new) and [`Domain::global`](crate::Domain::global): twice the
    /// objects that start a grace period unasked, so steady retirement
    /// never meets the bound, and a wait short enough that a writer behind
    /// a stalled reader loses milliseconds, once per stall.
    pub(crate) const DEFAULT: Self = Self {
        max_pending: DEFAULT_MAX_PENDING,
        owner_max_pending: DEFAULT_MAX_PENDING,
        max_wait: Duration::from_millis(10),
        soft_max_pending: DEFAULT_SOFT_MAX_PENDING,
        soft_max_wait: Duration::from_millis(1),
        retiring_threads_free: true,
        // Loom models have no reclaimer thread.
        reclaimer: cfg!(not(loom)),
        time_bound: DEFAULT_TIME_BOUND,
        lazy: false,
        stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
        robust: false,
    };
}

/// The default [time bound](DomainBuilder::time_bound): how long retired
/// objects may wait before the [`Reclaimer`](crate::Reclaimer) starts their
/// grace period.
pub const DEFAULT_TIME_BOUND: Duration = Duration::from_millis(100);

/// The default [stall timeout](DomainBuilder::stall_timeout): a reader that
/// holds a grace period up for longer is reported. Half the kernel's
/// default (21 s, `CONFIG_RCU_CPU_STALL_TIMEOUT`): a read section is meant
/// to last microseconds, and a user-space thread is not preempted for
/// seconds on a live machine, so a reader still inside after 10 s is a
/// bug (a guard kept alive by mistake, a deadlock inside a section) or a
/// frozen thread, and everything retired since waits for it.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The default bound on pending objects, per domain and per owner.
pub const DEFAULT_MAX_PENDING: usize = 8192;

/// The default [soft bound](DomainBuilder#the-soft-bound) on pending
/// objects, per domain and per owner: about the peak garbage that
/// crossbeam-epoch leaves behind two writers of a lock-free structure
/// (`benches/structures.rs`, two-thread rows: 134–391 objects), so a
/// writer preempted inside its section lets the others pile up about that
/// much before they wait for it. It only decides *when* a writer waits: a
/// writer waits only while a reader holds a grace period up, whatever the
/// bound. At 512, `hashmap/read/2`'s peak was 522 objects, 2.35×
/// crossbeam-epoch's; streaming retirement with prompt readers leaves more
/// than 256 waiting between grace periods at 10 million objects a second
/// (`benches/churn.rs`, `pending_peak`), but pays for the bound only when a
/// reader is held up (see the README's figures).
pub const DEFAULT_SOFT_MAX_PENDING: usize = 256;

/// Builds a [`Domain`](crate::Domain) with limits other than the defaults, from
/// [`Domain::builder`](crate::Domain::builder).
///
/// # The bound on pending objects
///
/// A domain counts the objects registered with it and not freed yet (a
/// thread's buffer of up to 128 single retirements is registered when it
/// fills, when the thread exits, when the reclaimer takes it over, or on
/// [`Domain::collect`](crate::Domain::collect) and
/// [`Domain::barrier`](crate::Domain::barrier)). When a registration (a full buffer, a batch drain,
/// an owner's retirement) leaves more than
/// [`max_pending`](DomainBuilder::max_pending) objects pending
/// ([`owner_max_pending`](DomainBuilder::owner_max_pending) for the objects
/// of one owner), the retiring thread pays, in steps:
///
/// 1. it starts a grace period now, instead of when enough work waits
///    (one process-wide barrier, about a microsecond);
/// 2. it frees every object whose grace period has completed, past the
///    amortized budget of 1024, waiting first for a thread that is freeing
///    some (destructors of one domain, or one owner, run one thread at a
///    time) for at most [`max_wait`](DomainBuilder::max_wait): those
///    destructors may wait for anything, a grace period of another domain
///    that a reader holds up, or a lock the retiring thread holds, so the
///    wait is bounded, and when it runs out the retirement goes on to step
///    3. [`retiring_threads_free(false)`](DomainBuilder::retiring_threads_free)
///    skips this step;
/// 3. if its own grace period has not completed, it waits for it for at
///    most [`max_wait`](DomainBuilder::max_wait), then frees again.
///
/// If that grace period still has not completed (a reader stays in its
/// section), the retirement returns past the bound and the event is
/// counted ([`Throttle::exceeded`](crate::Throttle::exceeded)); until that
/// grace period completes, later retirements skip the wait: a writer never
/// blocks behind a stalled reader for more than one `max_wait` per stall.
/// A thread inside a destructor of any domain or owner, or unwinding from
/// a panic, goes past the bound at once (it could not wait without risking
/// a deadlock, or must not run destructors), and that is counted too. A
/// thread inside a read section of the domain (a lock-free structure's
/// writer retires inside its section), or of any other domain, starts the
/// grace period and frees what is complete unless another thread is
/// freeing, but never waits (the grace period waits for its section; the
/// thread freeing may be in a destructor that waits for the other domain's
/// grace period, which waits for that section). If it freed nothing, it
/// yields the processor once and tries again
/// ([`Throttle::yields`](crate::Throttle::yields)): with more runnable
/// threads than cores, the thread that is freeing, or the reader holding
/// the grace period up, may be waiting for a processor, and meanwhile every
/// writer would go past the bound. If it is still past the bound, that is
/// counted as exceeded.
///
/// # The soft bound
///
/// Between grace periods, garbage waits only as long as readers take to
/// leave their sections. When a reader is held up inside one (preempted,
/// or just slow), a writer that goes on retiring, freeing nothing, piles up
/// garbage four to ten times faster than while it also frees (it skips the
/// destructors and the allocator), so a hold-up of 100 µs leaves thousands
/// of objects waiting. The soft bound paces the writer to its readers
/// instead. When a registration leaves more than
/// [`soft_max_pending`](DomainBuilder::soft_max_pending) objects pending in
/// the domain's queue, or in one owner's (default
/// [`DEFAULT_SOFT_MAX_PENDING`], 256), finds nothing to free, and the
/// oldest of them wait for a grace period that has started and not
/// completed (a reader holds it up), the retiring thread waits for that
/// grace period for at most [`soft_max_wait`](DomainBuilder::soft_max_wait)
/// (default 1 ms), then frees what completed, within the amortized budget
/// ([`Throttle::soft_waits`](crate::Throttle::soft_waits),
/// [`Throttle::soft_freed`](crate::Throttle::soft_freed)). It starts no
/// grace period, so pacing and rationing are unchanged, and it waits only
/// while a reader holds a grace period up. So it paces a writer only
/// while the oldest pending objects' grace period has started: a writer
/// that retires faster than grace periods complete, while the start floor
/// ([crate docs](crate#who-runs-destructors-and-when)) holds the next
/// one back, runs on toward the bound, which still holds.
///
/// A writer inside a read section of the domain (a lock-free structure's
/// writer retires inside its sections) waits too, but only for a grace
/// period that started before its section began: such a grace period does
/// not wait for that section, so the writer never waits for itself, and two
/// such writers never wait for each other (each waits only for grace
/// periods older than its own section). Without that, a writer preempted
/// inside its section let the other writers' garbage grow unchecked. A
/// thread inside a section older than the held-up grace period does not
/// wait, nor does one inside a destructor or unwinding, nor any thread
/// when retiring threads do not free
/// ([`retiring_threads_free(false)`](DomainBuilder::retiring_threads_free)),
/// nor any thread while the domain is crowded (more threads retire into it
/// than the process has processors:
/// [crate docs](crate#who-runs-destructors-and-when)): then every grace
/// period waits for some reader off its processor, a wait would ration
/// the writers by the scheduler's slices, and the bound alone limits the
/// garbage. A wait that runs out is counted
/// ([`Throttle::soft_exceeded`](crate::Throttle::soft_exceeded)), and until
/// that grace period completes nobody waits at the soft bound again before
/// the pending objects have doubled: a stalled reader costs a writer one
/// `soft_max_wait` per doubling (five from 256 to the default bound of
/// 8192: at about 256, 512, 1024, 2048 and 4096 pending objects), besides one [`max_wait`](DomainBuilder::max_wait) at the bound,
/// and a reader held up for a few milliseconds leaves thousands of objects
/// waiting, not the whole bound. The
/// price is paid by writers whose readers keep sections open for a while
/// (shorter than `soft_max_wait`): they retire about `soft_max_pending`
/// objects per such section instead of running ahead up to the bound.
/// [`unbounded`](DomainBuilder::unbounded) turns the soft bound off, and a
/// soft bound at or above the bound has no effect.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let domain = ownrcu::Domain::builder()
///     .max_pending(1000)
///     .max_wait(Duration::from_millis(2))
///     .reclaimer(false) // so that the drain itself frees them (see below)
///     .build();
/// let mut batch = domain.batch();
/// batch.extend((0..5000).map(Box::new));
/// batch.drain(); // past the bound: freed before `drain` returns
/// let stats = domain.stats();
/// assert_eq!(stats.pending, 0);
/// assert_eq!(stats.throttle.over_bound, 1);
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct DomainBuilder {
    pub(crate) config: Config,
    /// Where stalls go (`None`: one line on stderr).
    pub(crate) stall_hook: Option<StallHook>,
}

impl DomainBuilder {
    pub(crate) fn new() -> Self {
        Self {
            config: Config::DEFAULT,
            stall_hook: None,
        }
    }
}

/// The builder of [`Domain::builder`](crate::Domain::builder): every limit
/// at its default, so `DomainBuilder::default().build()` is a domain like
/// [`Domain::new`](crate::Domain::new)'s.
///
/// # Examples
///
/// ```
/// use ownrcu::DomainBuilder;
///
/// let domain = DomainBuilder::default().max_pending(100).build();
/// assert_eq!(domain.stats().pending, 0);
/// ```
impl Default for DomainBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DomainBuilder {
    /// The most objects that may wait in the domain (not counting owners'
    /// objects) before a retirement applies backpressure. Default
    /// [`DEFAULT_MAX_PENDING`] (8192).
    ///
    /// # Panics
    ///
    /// If `objects` is 0 (use [`unbounded`](DomainBuilder::unbounded) to
    /// turn the bound off).
    pub fn max_pending(mut self, objects: usize) -> Self {
        assert!(
            objects > 0,
            "ownrcu: DomainBuilder::max_pending(0) would hold back every retirement; use \
             unbounded() to turn the bound off"
        );
        self.config.max_pending = objects;
        self
    }

    /// The most objects retired through one owner of the domain that may
    /// wait before a retirement through it applies backpressure. Default
    /// [`DEFAULT_MAX_PENDING`] (8192).
    ///
    /// # Panics
    ///
    /// If `objects` is 0.
    pub fn owner_max_pending(mut self, objects: usize) -> Self {
        assert!(
            objects > 0,
            "ownrcu: DomainBuilder::owner_max_pending(0) would hold back every retirement; \
             use unbounded() to turn the bound off"
        );
        self.config.owner_max_pending = objects;
        self
    }

    /// No bound, for the domain or its owners, and no
    /// [soft bound](DomainBuilder#the-soft-bound): retirement never applies
    /// backpressure or waits, and pending objects may grow without limit
    /// while nobody frees them.
    pub fn unbounded(mut self) -> Self {
        self.config.max_pending = usize::MAX;
        self.config.owner_max_pending = usize::MAX;
        self.config.soft_max_pending = usize::MAX;
        self
    }

    /// The [soft bound](DomainBuilder#the-soft-bound): the most objects
    /// that may wait in the domain's own queue, or in one owner's, before a
    /// retirement that finds nothing to free waits for the grace period a
    /// reader holds up. Default [`DEFAULT_SOFT_MAX_PENDING`] (256);
    /// `usize::MAX` turns it off.
    ///
    /// # Panics
    ///
    /// If `objects` is 0 (every retirement would wait for its own grace
    /// period: use [`Domain::synchronize`](crate::Domain::synchronize) for
    /// that).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Writers that run ahead of slow readers by up to 4096 objects, and
    /// // wait at most 100 µs for one when further ahead.
    /// let domain = ownrcu::Domain::builder()
    ///     .soft_max_pending(4096)
    ///     .soft_max_wait(Duration::from_micros(100))
    ///     .build();
    /// let mut batch = domain.batch();
    /// batch.extend((0..100).map(Box::new));
    /// batch.drain(); // no reader holds a grace period up: no wait
    /// assert_eq!(domain.stats().throttle.soft_waits, 0);
    /// ```
    pub fn soft_max_pending(mut self, objects: usize) -> Self {
        assert!(
            objects > 0,
            "ownrcu: DomainBuilder::soft_max_pending(0) would make every retirement wait for \
             its grace period; use Domain::synchronize for that, or usize::MAX to turn the \
             soft bound off"
        );
        self.config.soft_max_pending = objects;
        self
    }

    /// The longest a retirement past the
    /// [soft bound](DomainBuilder#the-soft-bound) waits for the grace
    /// period a reader holds up. Default 1 ms; zero turns the wait into a
    /// check.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let domain = ownrcu::Domain::builder()
    ///     .soft_max_pending(10)
    ///     .soft_max_wait(Duration::from_millis(1))
    ///     .reclaimer(false)
    ///     .build();
    /// let (entered_tx, entered) = mpsc::channel();
    /// let (leave, leave_rx) = mpsc::channel::<()>();
    /// std::thread::scope(|s| {
    ///     let domain = &domain;
    ///     // A reader that stays in its section until told to leave.
    ///     s.spawn(move || {
    ///         let _guard = domain.read();
    ///         entered_tx.send(()).unwrap();
    ///         let _ = leave_rx.recv();
    ///     });
    ///     entered.recv().unwrap();
    ///     for _ in 0..5 {
    ///         let mut batch = domain.batch();
    ///         batch.extend((0..4).map(Box::new));
    ///         batch.drain(); // the third and later are past the soft bound
    ///     }
    ///     // One wait of at most 1 ms, which ran out; the later drains went on
    ///     // (the next wait would come at 24 pending objects, twice 12).
    ///     let throttle = domain.stats().throttle;
    ///     assert_eq!((throttle.soft_waits, throttle.soft_exceeded), (1, 1));
    ///     leave.send(()).unwrap();
    /// });
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 20);
    /// ```
    pub fn soft_max_wait(mut self, wait: Duration) -> Self {
        self.config.soft_max_wait = wait;
        self
    }

    /// The longest a retirement past the bound waits for a grace period.
    /// Default 10 ms.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config.max_wait = wait;
        self
    }

    /// Whether threads that retire objects run destructors (default
    /// `true`): the amortized free of up to 1024 objects after a
    /// registration, and the inline free of the bound's backpressure.
    ///
    /// With `false`, retiring never runs a destructor, for producers that
    /// must not (real-time threads, or code holding locks the destructors
    /// take): objects are freed by whoever calls [`Domain::collect`](crate::Domain::collect) or
    /// [`Domain::barrier`](crate::Domain::barrier) (or by the domain's teardown), so choose that
    /// thread, or leave it to the [`Reclaimer`](crate::Reclaimer) thread
    /// (the default, unless [`reclaimer(false)`](DomainBuilder::reclaimer)).
    /// Past the bound a retirement still starts a grace period and waits
    /// for it a bounded time, but frees nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// // Freed by `collect` on a thread of our choosing (and not by the
    /// // reclaimer thread, so the counts below are exact):
    /// let domain = ownrcu::Domain::builder()
    ///     .retiring_threads_free(false)
    ///     .reclaimer(false)
    ///     .build();
    /// let mut batch = domain.batch();
    /// batch.extend((0..20_000).map(Box::new)); // past the bound
    /// batch.drain(); // frees nothing
    /// assert_eq!(domain.stats().freed, 0);
    /// // A thread of our choosing frees them:
    /// std::thread::scope(|s| {
    ///     s.spawn(|| while domain.stats().pending > 0 {
    ///         domain.collect();
    ///         std::thread::yield_now();
    ///     });
    /// });
    /// assert_eq!(domain.stats().freed_by.collect, 20_000);
    /// ```
    pub fn retiring_threads_free(mut self, free: bool) -> Self {
        self.config.retiring_threads_free = free;
        self
    }

    /// Whether the process-wide [`Reclaimer`](crate::Reclaimer) serves the
    /// domain (default `true`): objects retired and then left alone (an
    /// idle writer, a last partial buffer) get their grace period within
    /// the [time bound](DomainBuilder::time_bound) and are freed on the
    /// reclaimer thread, with no further call. With `false`, they wait for
    /// the next retirement that starts a grace period, a
    /// [`collect`](crate::Domain::collect), a [`barrier`](crate::Domain::barrier), or
    /// the domain's drop.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::builder().reclaimer(false).build();
    /// domain.retire(Box::new(1_u32));
    /// std::thread::sleep(std::time::Duration::from_millis(300));
    /// assert_eq!(domain.stats().freed, 0); // nobody freed it
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 1);
    /// ```
    pub fn reclaimer(mut self, serve: bool) -> Self {
        self.config.reclaimer = serve;
        self
    }

    /// The longest retired objects wait before their grace period starts,
    /// when fewer wait than start one unasked (default
    /// [`DEFAULT_TIME_BOUND`], 100 ms). The [`Reclaimer`](crate::Reclaimer)
    /// enforces it: it visits the domain every half of it, takes over
    /// buffers of single retirements that were already non-empty at its
    /// previous visit, starts a grace period for work that was already
    /// waiting at its previous visit, and frees what is complete. So an
    /// idle writer's objects are freed within about one and a half time
    /// bounds, plus however long readers keep the grace period open.
    /// Shorter bounds cost more reclaimer wake-ups (two per time bound,
    /// while work waits) and more grace periods.
    ///
    /// # Panics
    ///
    /// If `bound` is zero.
    pub fn time_bound(mut self, bound: Duration) -> Self {
        assert!(
            !bound.is_zero(),
            "ownrcu: DomainBuilder::time_bound(0); use hurry() or retire_hurry() to start a \
             grace period at once"
        );
        self.config.time_bound = bound;
        self
    }

    /// Lazy grace periods (default `false`): like the kernel's lazy RCU,
    /// trade memory for fewer grace periods. A lazy domain starts a grace
    /// period only when 4096 objects (or 32 buffers and batches) wait for
    /// one and the start floor has passed, when work has waited the
    /// [time bound](DomainBuilder::time_bound),
    /// or when someone waits or hurries; and every thread buffers 128 single
    /// retirements before handing them over.
    ///
    /// By default a domain paces grace periods instead (the pacing and the
    /// start floor, which applies to both, are described once in the
    /// [crate docs](crate#who-runs-destructors-and-when)), and each
    /// thread's buffer adapts to its retirement rate (8 to 128 objects,
    /// about 100 µs of retirements). That keeps garbage near what a writer
    /// retires in a few tens of microseconds while readers keep up. While
    /// more threads retire into it than the process has processors, a
    /// domain rations as a lazy one does, at 1024 objects
    /// ([crowding](crate#who-runs-destructors-and-when)).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::builder().lazy(true).reclaimer(false).build();
    /// for i in 0..1000_u64 {
    ///     domain.retire(Box::new(i));
    /// }
    /// assert_eq!(domain.stats().grace_periods_started, 0); // fewer than 4096
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 1000);
    /// ```
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.config.lazy = lazy;
        self
    }

    /// Stall warnings: a reader that has held a grace period up for longer
    /// than `timeout` is reported once, through [`on_stall`](Self::on_stall)
    /// (default: one line on stderr), naming its thread, and counted in
    /// [`Stats::stalls`](crate::Stats::stalls); `None` turns them off.
    /// Default [`DEFAULT_STALL_TIMEOUT`] (10 s).
    ///
    /// A stall is looked for only where something waits for that grace
    /// period (a `synchronize`, `barrier` or cookie `wait`, a retirement
    /// waiting at a bound) or on the [`Reclaimer`](crate::Reclaimer)'s
    /// visits while retired objects wait (every half
    /// [time bound](Self::time_bound)): a reader nothing waits for is not
    /// a stall. It costs the read path nothing. One report per grace
    /// period, so a reader stuck for an hour is reported once (until it
    /// leaves and another stall begins); each reader that still holds that
    /// grace period up when it is seen gets its own report.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let quiet = ownrcu::Domain::builder().stall_timeout(None).build();
    /// let strict = ownrcu::Domain::builder()
    ///     .stall_timeout(Some(Duration::from_millis(100)))
    ///     .build();
    /// # let _ = (quiet, strict);
    /// ```
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.stall_timeout = timeout;
        self
    }

    /// A robust domain: a reader that never leaves its section holds only
    /// the objects born before its last load, not everything retired after
    /// it entered. Default off.
    ///
    /// In any domain, a grace period waits for every reader in a section
    /// when it started, so a reader that stays (a thread descheduled for
    /// good, a task that never resumes, a bug) holds everything retired
    /// after it entered: writers wait a bounded time at the bounds, then
    /// garbage grows without limit. In a robust domain, objects retired
    /// with a [`Birth`](crate::Birth)
    /// ([`Domain::retire_born`](crate::Domain::retire_born),
    /// [`Batch::push_born`](crate::Batch::push_born),
    /// [`Detached::retire_born`](crate::Detached::retire_born)) may be
    /// freed before their grace period completes, by *scans* that read
    /// what the readers have reserved and free every waiting unit (a
    /// thread's buffer of retirements, a batch) whose oldest birth is
    /// younger than every reservation that may cover it
    /// ([`FreedBy::early`](crate::FreedBy::early)):
    ///
    /// - every registration (a thread's buffer filling up, a drained batch)
    ///   that finds older work still waiting for its grace period scans
    ///   with one fence on its own thread: no process-wide barrier, so
    ///   garbage born after a reader that stays is freed as it is handed
    ///   over. It passes over readers that entered after the units' grace
    ///   periods started and the scanning thread itself outside its
    ///   sections; any other thread's last reservation counts, in a section
    ///   or not.
    /// - past the soft bound or the bound (before a retirement would wait),
    ///   on [`Domain::collect`](crate::Domain::collect), and on the
    ///   [`Reclaimer`](crate::Reclaimer)'s visits once writers went idle,
    ///   a scan also runs one process-wide barrier, which lets it pass over
    ///   every thread outside a section.
    ///
    /// A reader in a section of a robust domain holds:
    ///
    /// - the objects born at or before the era of its latest load through a
    ///   [`Link`](crate::Link) or an [`Atomic`](crate::Atomic) (or of its
    ///   entry, if it loaded nothing): eras count the domain's grace
    ///   periods started, read by [`Domain::birth`](crate::Domain::birth);
    /// - while an exchange (`swap`, `compare_exchange`, `fetch_or`, ...)
    ///   runs, every object; in an owned section
    ///   ([`Domain::read_owned`](crate::Domain::read_owned)), whose guard
    ///   may be used on several threads at once, from its first exchange
    ///   until it repins or ends;
    /// - every object retired without a birth (`retire`, `retire_raw`,
    ///   `retire_with`, owners, [`Detached::retire`](crate::Detached::retire)),
    ///   and every batch holding one, which wait for their grace period as
    ///   in any domain; so do the objects that share a thread's buffer with
    ///   one.
    ///
    /// It does not hold what was born after that, even if it was retired
    /// after the reader entered. [`synchronize`](crate::Domain::synchronize),
    /// [`barrier`](crate::Domain::barrier) and grace-period cookies still
    /// wait for every reader, and stall warnings still report a reader that
    /// stays: an early free is not a grace period.
    ///
    /// A scan with a barrier also starts a grace period, even while another
    /// is held up, so the era moves on behind a reader that stays: readers
    /// that enter afterwards are younger than everything the scan saw
    /// queued, and once the readers that were in sections then have left
    /// them, only the one that stays is left to hold those objects. And a
    /// grace period completes once the readers that entered before it have
    /// left, even while a newer one is held up by a reader that entered
    /// later.
    ///
    /// The price is on the read path, which is why it is not the default:
    /// every load through a `Link` or an `Atomic` of the domain also reads
    /// the era and compares it with what the thread reserved (and when the
    /// era moved, publishes it, runs a full fence and loads again), and
    /// every exchange stores twice around a full fence. In an owned
    /// section, whose threads cannot rely on each other's fences, such a
    /// load fences every time once the era has moved on. On structures
    /// that chase pointers it is measured in BENCHMARKS.md (the
    /// `ownrcu_atomic_robust` column).
    ///
    /// The pointer types say whether their domain may be robust, so that
    /// structures in other domains pay nothing for this mode:
    ///
    /// | pointer | in a robust domain | elsewhere, per load |
    /// | --- | --- | --- |
    /// | [`Link<T>`](crate::Link), `Atomic<T, `[`UncheckedDomain`](crate::UncheckedDomain)`>` | panics | nothing |
    /// | `Link<T, true>`, `Atomic<T, UncheckedDomain<true>>`, [`Atomic<T>`](crate::Atomic) | protects what it loads | a test of a bit of the guard |
    /// | `Atomic<T, `[`GlobalDomain`](crate::GlobalDomain)`>` | (never: the global domain is not robust) | nothing |
    ///
    /// (The test is a second path in every loop that loads, which the
    /// compiler may copy the loop for; the plain types check once, with a
    /// test a loop hoists.)
    ///
    /// # Examples
    ///
    /// A reader stays in its section while a writer retires 100 000
    /// objects born after it entered; they do not pile up behind it:
    ///
    /// ```
    /// unsafe fn free_u64(ptr: *mut u64) {
    ///     // SAFETY: from `Box::into_raw` below.
    ///     drop(unsafe { Box::from_raw(ptr) });
    /// }
    /// let domain = ownrcu::Domain::builder().robust(true).build();
    /// let stuck = domain.read_owned(); // a section that is not going anywhere
    /// for i in 0..100_000_u64 {
    ///     let birth = domain.birth();
    ///     let object = Box::into_raw(Box::new(i));
    ///     // SAFETY: 1-5: `free_u64` frees this box, once, on any thread;
    ///     // never published, so unreachable and held by no reader; 6, 7:
    ///     // its birth was read before (it was never published at all).
    ///     unsafe { domain.retire_born(object, free_u64, birth) };
    /// }
    /// let stats = domain.stats();
    /// assert!(stats.freed_by.early > 90_000);
    /// assert!(stats.peak_pending <= 2 * 8192); // the default bound, twice
    /// drop(stuck);
    /// ```
    pub fn robust(mut self, robust: bool) -> Self {
        self.config.robust = robust;
        self
    }

    /// Where stall warnings go (see [`stall_timeout`](Self::stall_timeout)),
    /// instead of one line on stderr: a logger, a metric, a test's channel.
    /// The hook runs on the thread that noticed the stall (a waiting thread
    /// or the reclaimer), outside the domain's locks, so it may call into
    /// the domain; a panic in it is caught and dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::builder()
    ///     .on_stall(|stall| eprintln!("my service: {stall}"))
    ///     .build();
    /// # drop(domain);
    /// ```
    pub fn on_stall(mut self, hook: impl Fn(&Stall) + Send + Sync + 'static) -> Self {
        self.stall_hook = Some(StallHook(std::sync::Arc::new(hook)));
        self
    }
}
