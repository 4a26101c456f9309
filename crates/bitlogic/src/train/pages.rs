//! Zeroed buffers that Linux may back with 2 MB pages: the workers' activation and gradient
//! rows.
//!
//! A training step reads every neuron's input rows, and adds into their gradient rows, at
//! random places in a few MB per layer. On 4 KB pages most of those rows miss the TLB: the
//! second-level TLB covers 8 MB that way, and a 784 → 6 × 8000 step at batch 128 spreads its
//! rows over about 20 MB. On 2 MB pages the same buffers need a few dozen entries, and the
//! kernels wait on the rows alone (light rank 2 bf16, blocks 4.0 → 2.8 ms a step; see
//! docs/benchmarks.md).
//!
//! Linux hands out 2 MB pages for anonymous memory that is 2 MB-aligned and marked with
//! `madvise(MADV_HUGEPAGE)` (transparent huge pages set to `madvise` or `always`). A buffer
//! of at least [`HUGE_MIN`] bytes is mapped that way; a smaller one, a failed mapping and
//! other systems get an ordinary zeroed allocation, which is correct, only slower.

use crate::layer::Act;
use std::alloc::Layout;
use std::ptr::NonNull;

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE: usize = 2 << 20;
/// Below this, a buffer fits a handful of 4 KB pages' TLB entries anyway, and rounding it up
/// to a whole 2 MB page would waste more memory than it saves time.
pub(super) const HUGE_MIN: usize = 1 << 20;

/// A fixed-length, zero-initialised `[T]`.
pub(crate) struct PageBuf<T: Act> {
    ptr: NonNull<T>,
    len: usize,
    /// Where the memory came from, to give it back the same way.
    from: From,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum From {
    /// Nothing allocated (length 0 or a zero-sized type).
    None,
    Heap(Layout),
    /// An anonymous mapping: its start and length, of which `ptr` is the 2 MB-aligned part.
    #[cfg(target_os = "linux")]
    Map(*mut libc::c_void, usize),
}

// SAFETY: a PageBuf owns its memory exclusively, as a Vec does.
unsafe impl<T: Act> Send for PageBuf<T> {}
unsafe impl<T: Act> Sync for PageBuf<T> {}

impl<T: Act> PageBuf<T> {
    /// `len` zeros (every storage type's zero is all-zero bits).
    pub(crate) fn zeroed(len: usize) -> Self {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("buffer size overflows usize");
        if bytes == 0 {
            return PageBuf {
                ptr: NonNull::dangling(),
                len,
                from: From::None,
            };
        }
        #[cfg(target_os = "linux")]
        if bytes >= HUGE_MIN {
            if let Some((ptr, from)) = map_huge(bytes) {
                return PageBuf {
                    ptr: ptr.cast(),
                    len,
                    from,
                };
            }
        }
        let layout = Layout::array::<T>(len).expect("buffer size overflows isize");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr.cast::<T>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        PageBuf {
            ptr,
            len,
            from: From::Heap(layout),
        }
    }

    /// Whether the buffer is mapped for 2 MB pages (the kernel may still decline to use them).
    #[cfg(test)]
    pub(crate) fn mapped_huge(&self) -> bool {
        !matches!(self.from, From::None | From::Heap(_))
    }
}

/// An anonymous mapping with a 2 MB-aligned stretch of `bytes` (rounded up to 2 MB) marked
/// for huge pages; `None` if the mapping fails. Fresh anonymous memory reads as zeros.
#[cfg(target_os = "linux")]
fn map_huge(bytes: usize) -> Option<(NonNull<u8>, From)> {
    let size = bytes.checked_next_multiple_of(HUGE)?;
    // One page more than needed, so that an aligned start falls inside.
    let total = size.checked_add(HUGE)?;
    // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let start = (base as usize).next_multiple_of(HUGE);
    let ptr = start as *mut libc::c_void;
    // SAFETY: [start, start + size) lies inside the mapping. A refusal (a kernel without
    // transparent huge pages) leaves ordinary pages, so the result is ignored.
    unsafe { libc::madvise(ptr, size, libc::MADV_HUGEPAGE) };
    Some((NonNull::new(ptr.cast())?, From::Map(base, total)))
}

impl<T: Act> Drop for PageBuf<T> {
    fn drop(&mut self) {
        match self.from {
            From::None => {}
            // SAFETY: allocated with this layout in `zeroed`.
            From::Heap(layout) => unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) },
            // SAFETY: the whole mapping made in `map_huge`, unmapped once.
            #[cfg(target_os = "linux")]
            From::Map(base, total) => unsafe {
                libc::munmap(base, total);
            },
        }
    }
}

impl<T: Act> std::ops::Deref for PageBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised values (zeros, then whatever was written) at `ptr`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Act> std::ops::DerefMut for PageBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Bf16;

    #[test]
    fn buffers_start_at_zero_and_hold_what_is_written() {
        for len in [0, 1, 1000, HUGE_MIN / 2 + 3, 3 * HUGE / 2 + 7] {
            let mut a = PageBuf::<f32>::zeroed(len);
            let mut b = PageBuf::<Bf16>::zeroed(len);
            assert_eq!((a.len(), b.len()), (len, len));
            assert!(a.iter().all(|&v| v == 0.0) && b.iter().all(|v| v.to_f32() == 0.0));
            for (i, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
                *x = i as f32;
                *y = Bf16::from_f32((i % 256) as f32);
            }
            let last = len.saturating_sub(1);
            if len > 0 {
                assert_eq!(a[last], last as f32);
                assert_eq!(b[last].to_f32(), (last % 256) as f32);
            }
            // Large buffers are mapped for huge pages on Linux, 2 MB-aligned.
            let big = len * 4 >= HUGE_MIN;
            assert_eq!(
                a.mapped_huge(),
                big && cfg!(target_os = "linux"),
                "len {len}"
            );
            if a.mapped_huge() {
                assert_eq!(a.as_ptr() as usize % HUGE, 0);
            }
        }
    }
}
