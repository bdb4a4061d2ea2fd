//! The keyspace-wide exclusive gate (docs/design/execution-model.md).
//!
//! Worker threads run their commands on the *shared* side of the gate; whatever must see no other client at
//! all (a script that touches keys it did not declare, `lock_all`) takes the *exclusive* side. The shared
//! side costs one store to the worker's own cache line plus a fence, once per batch of commands — no write
//! to a shared cache line on the hot path. Taking the exclusive side closes the gate (new entries wait) and
//! waits until every worker has left its shared side.
//!
//! Rules: a thread never waits to enter (or to take the exclusive side) while it holds a shard lock, and
//! never holds the shared side across an `.await`. Threads that are not registered workers (background
//! jobs) do not take part: they may only take shard locks for short holds without waiting on anything else
//! while holding them.

use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU32);

pub struct Gate {
    closed: AtomicBool,
    /// Held by the exclusive side; those waiting to enter wait on it.
    owner: Mutex<()>,
    slots: Box<[Slot]>,
}

thread_local! {
    /// This thread's slot (its worker index), usize::MAX when it is not a worker.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// How long a waiter sleeps between checks of its give-up condition.
const POLL: Duration = Duration::from_millis(5);

impl Gate {
    pub fn new(slots: usize) -> Gate {
        Gate {
            closed: AtomicBool::new(false),
            owner: Mutex::new(()),
            slots: (0..slots).map(|_| Slot::default()).collect(),
        }
    }

    /// Make the calling thread worker `i` (it then enters the shared side before running commands).
    pub fn register(&self, i: usize) {
        if i < self.slots.len() {
            SLOT.with(|s| s.set(i));
        }
    }

    #[inline]
    fn slot(&self) -> Option<&AtomicU32> {
        let i = SLOT.with(|s| s.get());
        self.slots.get(i).map(|s| &s.0)
    }

    /// Whether this thread is on the shared side (always true for threads that are not workers).
    #[inline]
    pub fn is_in(&self) -> bool {
        self.slot().is_none_or(|s| s.load(Ordering::Relaxed) != 0)
    }

    /// Enter the shared side (no-op when already in). While the exclusive side is taken this waits; if
    /// `give_up()` turns true meanwhile it returns false without entering.
    pub fn enter(&self, give_up: impl Fn() -> bool) -> bool {
        let Some(s) = self.slot() else {
            return true;
        };
        if s.load(Ordering::Relaxed) != 0 {
            return true;
        }
        loop {
            s.store(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if !self.closed.load(Ordering::Relaxed) {
                return true;
            }
            s.store(0, Ordering::Release);
            loop {
                if let Some(g) = self.owner.try_lock_for(POLL) {
                    drop(g);
                    break;
                }
                if give_up() {
                    return false;
                }
            }
        }
    }

    /// Leave the shared side (before an `.await`, or at the end of a batch).
    #[inline]
    pub fn leave(&self) {
        if let Some(s) = self.slot() {
            s.store(0, Ordering::Release);
        }
    }

    /// Take the exclusive side: no worker runs anything until the returned guard is dropped. The calling
    /// thread leaves its own shared side first (it must hold no shard lock). Returns None if `give_up()`
    /// turns true while another exclusive holder keeps it waiting. After the guard is dropped the caller is
    /// outside the gate: enter again before running commands.
    pub fn exclusive(&self, give_up: impl Fn() -> bool) -> Option<Exclusive<'_>> {
        self.leave();
        let owner = loop {
            if let Some(g) = self.owner.try_lock_for(POLL) {
                break g;
            }
            if give_up() {
                return None;
            }
        };
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        for s in self.slots.iter() {
            let mut spins = 0u32;
            while s.0.load(Ordering::Acquire) != 0 {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        Some(Exclusive {
            gate: self,
            _owner: owner,
        })
    }
}

/// The exclusive side of the gate, held until dropped.
pub struct Exclusive<'a> {
    gate: &'a Gate,
    _owner: parking_lot::MutexGuard<'a, ()>,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        self.gate.closed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn exclusive_excludes_workers() {
        let gate = Arc::new(Gate::new(4));
        let inside = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for w in 0..3 {
            let (gate, inside, stop, violations) = (
                gate.clone(),
                inside.clone(),
                stop.clone(),
                violations.clone(),
            );
            hs.push(std::thread::spawn(move || {
                gate.register(w);
                while !stop.load(Ordering::Relaxed) {
                    if w == 0 {
                        // One worker alternates between shared work and exclusive sections.
                        let ex = gate.exclusive(|| false).unwrap();
                        if inside.load(Ordering::SeqCst) != 0 {
                            violations.fetch_add(1, Ordering::Relaxed);
                        }
                        drop(ex);
                    }
                    assert!(gate.enter(|| false));
                    inside.fetch_add(1, Ordering::SeqCst);
                    std::hint::spin_loop();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    gate.leave();
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(violations.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn waiting_entry_can_give_up() {
        let gate = Arc::new(Gate::new(2));
        let ex = gate.exclusive(|| false).unwrap();
        let g2 = gate.clone();
        let t = std::thread::spawn(move || {
            g2.register(1);
            g2.enter(|| true)
        });
        assert!(!t.join().unwrap());
        drop(ex);
    }
}
