//! The reclaimer stopped from one of its own destructors
//! (`Reclaimer::disable` on the reclaimer thread, which cannot wait for
//! itself) and turned back on: once the old thread has left that
//! destructor and exited, a later retirement starts a new one, which frees
//! as before. (Until then no second thread starts, so there is never more
//! than one; retirements meanwhile ring in vain, and wait for the next.)
//!
//! Its own test binary: it switches the process-wide reclaimer off and on,
//! which would race the other reclaimer tests.

use std::sync::mpsc;
use std::time::Duration;

use ownrcu::{Domain, Reclaimer};

mod common;

use common::{eventually, Drops};

#[test]
fn a_reclaimer_stopped_by_its_own_destructor_comes_back_when_turned_on() {
    struct Stopper {
        disabled: mpsc::Sender<()>,
        go_on: mpsc::Receiver<()>,
    }
    impl Drop for Stopper {
        fn drop(&mut self) {
            Reclaimer::disable(); // on the reclaimer thread itself
            self.disabled.send(()).unwrap();
            self.go_on.recv().unwrap();
        }
    }
    Reclaimer::enable(); // off by default under Miri
    let builder = || {
        Domain::builder()
            .time_bound(Duration::from_millis(10))
            .retiring_threads_free(false) // so the reclaimer runs the destructor
    };
    let a = builder().build();
    let (disabled_tx, disabled) = mpsc::channel();
    let (go_on, go_on_rx) = mpsc::channel();
    a.retire(Box::new(Stopper {
        disabled: disabled_tx,
        go_on: go_on_rx,
    }));
    disabled.recv().unwrap(); // the reclaimer is inside the destructor
    assert!(!Reclaimer::is_enabled());
    Reclaimer::enable();
    let b = builder().build();
    let drops = Drops::default();
    b.retire(drops.obj()); // no new thread yet: the old one is still here
    go_on.send(()).unwrap();
    // Each retirement rings; once the old thread has gone, one starts a
    // new reclaimer, which frees them all.
    let mut retired = 1;
    eventually("a new reclaimer freed the objects", || {
        b.retire(drops.obj());
        retired += 1;
        b.stats().freed_by.reclaimer > 0
    });
    eventually("every object freed", || {
        b.stats().freed == retired && a.stats().freed == 1
    });
    assert_eq!(drops.get() as u64, retired);
    Reclaimer::disable(); // Miri wants no thread left at exit
}
