//! The threads' coefficient gradients, and the hand-over of each layer's to the weight update.
//!
//! A thread adds its blocks' coefficient gradients into buffers of its own, one per layer.
//! The backward pass runs from the top layer down, so a layer's gradients are final as soon
//! as the thread's last block has passed it: the thread then hands the layer over, and once
//! every thread that runs blocks this step has done so, the layer's weights can be updated
//! while lower layers are still running backward (see `params`). Where one vCPU is slower
//! than the other, the faster one updates the top layers in the meantime.
//!
//! A hand-over is one flag per thread and layer: its writer sets it (Release) when done and
//! never writes the buffer again this step, and a reader reads a buffer only after seeing it
//! set (Acquire). Reading needs no lock, so two threads updating the same layer do not take
//! turns on a shared lock word.

use super::pages::PageBuf;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One thread's gradients of one layer.
struct Slot {
    buf: UnsafeCell<PageBuf<f32>>,
    handed: AtomicBool,
}

// SAFETY: `buf` is written only through the `Writer` of its thread (one per thread per step,
// see `writer`) before `handed` is set, and read only after it is seen set.
unsafe impl Sync for Slot {}

/// Every thread's coefficient gradients, `[thread][layer]`, and the layers handed over.
pub(super) struct CoefGrads {
    slots: Vec<Vec<Slot>>,
    /// Per layer: the threads that have handed it over this step.
    handed: Vec<AtomicUsize>,
    /// Per thread: whether its writer was given out this step.
    writing: Vec<AtomicBool>,
    /// Threads that run blocks this step: threads `0..active`.
    active: usize,
    /// Set when a thread panics with its writer: what it had not handed over never comes.
    abandoned: AtomicBool,
}

impl CoefGrads {
    /// Zeroed buffers of `lens[l]` values per layer for each of `threads` threads.
    pub(super) fn new(lens: &[usize], threads: usize) -> Self {
        let slot = |n: usize| Slot {
            buf: UnsafeCell::new(PageBuf::zeroed(n)),
            handed: AtomicBool::new(false),
        };
        CoefGrads {
            slots: (0..threads)
                .map(|_| lens.iter().map(|&n| slot(n)).collect())
                .collect(),
            handed: lens.iter().map(|_| AtomicUsize::new(0)).collect(),
            writing: (0..threads).map(|_| AtomicBool::new(false)).collect(),
            active: 0,
            abandoned: AtomicBool::new(false),
        }
    }

    /// Starts a step in which threads `0..active` run blocks.
    pub(super) fn begin(&mut self, active: usize) {
        assert!(
            (1..=self.slots.len()).contains(&active),
            "a step runs blocks on 1..={} threads (got {active})",
            self.slots.len()
        );
        self.active = active;
        for row in &mut self.slots {
            row.iter_mut().for_each(|s| *s.handed.get_mut() = false);
        }
        self.handed.iter_mut().for_each(|h| *h.get_mut() = 0);
        self.writing.iter_mut().for_each(|w| *w.get_mut() = false);
        *self.abandoned.get_mut() = false;
    }

    /// Thread `t`'s writer for this step.
    ///
    /// Panics if it was already given out this step: two writers of one thread could hand
    /// out two mutable views of one buffer.
    pub(super) fn writer(&self, t: usize) -> Writer<'_> {
        let taken = self.writing[t].swap(true, Ordering::AcqRel);
        assert!(
            !taken,
            "thread {t}'s coefficient gradients have a writer already"
        );
        Writer { grads: self, t }
    }

    /// Whether every active thread has handed layer `l` over.
    pub(super) fn ready(&self, l: usize) -> bool {
        self.handed[l].load(Ordering::Acquire) == self.active
    }

    /// Waits until layer `l` is `ready` (true) or a thread has panicked before handing it
    /// over (false). Meanwhile it runs any job of the pool nobody has taken yet: a block
    /// job still queued behind this thread's would otherwise wait for another thread.
    pub(super) fn wait(&self, l: usize) -> bool {
        while !self.ready(l) {
            if self.abandoned.load(Ordering::Acquire) {
                // A thread may have handed the layer over and then panicked between the
                // check above and this one: what it handed over before panicking is seen
                // now, so look once more.
                return self.ready(l);
            }
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::hint::spin_loop();
            }
        }
        true
    }

    /// Thread `t`'s gradients of layer `l`, once handed over (`None` before).
    fn read(&self, t: usize, l: usize) -> Option<&[f32]> {
        let slot = &self.slots[t][l];
        // SAFETY: the writer set `handed` after its last write and cannot write again this
        // step (`Writer::layer`); the Acquire load orders its writes before this read.
        slot.handed
            .load(Ordering::Acquire)
            .then(|| unsafe { &**slot.buf.get() })
    }

    /// `out` = Σ over the active threads, in thread order, of their layer-`l` gradients from
    /// `off` on, times `unscale` (nothing is multiplied when it is 1).
    ///
    /// Panics if a thread has not handed layer `l` over.
    pub(super) fn sum(&self, l: usize, off: usize, unscale: f32, out: &mut [f32]) {
        let len = out.len();
        let part = |t: usize| {
            let all = self.read(t, l).unwrap_or_else(|| {
                panic!("layer {l}'s coefficient gradients of thread {t} are not handed over")
            });
            &all[off..off + len]
        };
        out.copy_from_slice(part(0));
        for t in 1..self.active {
            out.iter_mut().zip(part(t)).for_each(|(d, s)| *d += s);
        }
        if unscale != 1.0 {
            out.iter_mut().for_each(|v| *v *= unscale);
        }
    }
}

/// One thread's access to its own gradients during a step.
pub(super) struct Writer<'a> {
    grads: &'a CoefGrads,
    t: usize,
}

impl Writer<'_> {
    /// Layer `l`'s buffer. Panics once the layer is handed over.
    pub(super) fn layer(&mut self, l: usize) -> &mut [f32] {
        let slot = &self.grads.slots[self.t][l];
        assert!(
            !slot.handed.load(Ordering::Relaxed),
            "layer {l} of thread {} is handed over already",
            self.t
        );
        // SAFETY: only this writer (one per thread per step) reaches this slot's buffer
        // until `handed` is set, and `&mut self` keeps its views from overlapping.
        unsafe { &mut *slot.buf.get() }
    }

    /// Hands layer `l` over: its gradients are final for this step.
    pub(super) fn hand_over(&mut self, l: usize) {
        self.grads.slots[self.t][l]
            .handed
            .store(true, Ordering::Release);
        self.grads.handed[l].fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.grads.abandoned.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_in_thread_order_what_the_active_threads_handed_over() {
        let mut g = CoefGrads::new(&[3, 2], 3);
        g.begin(2);
        {
            let (mut w0, mut w1) = (g.writer(0), g.writer(1));
            w0.layer(1).copy_from_slice(&[1.0, 2.0]);
            w1.layer(1).copy_from_slice(&[10.0, 20.0]);
            w0.hand_over(1);
            assert!(!g.ready(1), "one of two threads has handed layer 1 over");
            w1.hand_over(1);
        }
        assert!(g.ready(1) && !g.ready(0));
        let mut out = [0.0; 2];
        g.sum(1, 0, 0.5, &mut out);
        assert_eq!(out, [5.5, 11.0]);
        let mut tail = [0.0];
        g.sum(1, 1, 1.0, &mut tail);
        assert_eq!(tail, [22.0]);
        // A new step: nothing is handed over, and the writers can be taken again.
        g.begin(1);
        assert!(!g.ready(1));
        let mut w0 = g.writer(0);
        w0.layer(0).copy_from_slice(&[4.0, 5.0, 6.0]);
        w0.hand_over(0);
        let mut out = [0.0; 3];
        g.sum(0, 0, 1.0, &mut out);
        assert_eq!(out, [4.0, 5.0, 6.0], "thread 1 sits this step out");
    }

    #[test]
    fn a_thread_that_panics_before_its_hand_over_releases_the_waiter() {
        let mut g = CoefGrads::new(&[2, 2], 2);
        g.begin(2);
        g.writer(0).hand_over(1);
        let g = &g;
        std::thread::scope(|s| {
            s.spawn(|| {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut w = g.writer(1);
                    w.hand_over(1);
                    panic!("inside layer 0's backward pass");
                }));
                assert!(caught.is_err());
            });
            assert!(g.wait(1), "both threads handed layer 1 over");
            assert!(!g.wait(0), "thread 1 never hands layer 0 over");
        });
    }

    #[test]
    #[should_panic(expected = "handed over already")]
    fn a_handed_over_layer_cannot_be_written() {
        let mut g = CoefGrads::new(&[2], 1);
        g.begin(1);
        let mut w = g.writer(0);
        w.hand_over(0);
        w.layer(0)[0] = 1.0;
    }

    #[test]
    #[should_panic(expected = "writer already")]
    fn a_thread_has_one_writer_a_step() {
        let mut g = CoefGrads::new(&[2], 2);
        g.begin(2);
        let _a = g.writer(1);
        let _b = g.writer(1);
    }

    #[test]
    #[should_panic(expected = "not handed over")]
    fn a_sum_before_the_hand_over_is_refused() {
        let mut g = CoefGrads::new(&[2], 2);
        g.begin(2);
        g.writer(0).hand_over(0);
        g.sum(0, 0, 1.0, &mut [0.0; 2]);
    }
}
