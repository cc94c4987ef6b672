//! The process's allocator, told to keep the engine's working memory between photos.
//!
//! One photo allocates and frees a few large buffers (a 4K JPEG decoded in full is 12 MB of
//! planes, plus resize scratch). glibc's malloc gives such blocks back to the kernel when they
//! are freed — by `munmap`, or by trimming the heap once more than twice the last such block
//! is free at its top — so the next photo takes a page fault for every 4 KiB of them again and
//! has the kernel zero them. Measured on 4K sources, that was a fifth of the engine's CPU
//! (docs/BENCHMARKS.md, "Quality by class of source"). Fixed thresholds keep blocks up to
//! [`MMAP_THRESHOLD`] in the heap and at most [`TRIM_THRESHOLD`] of free memory at its top:
//! the peak stays what it was (the next photo reuses the same memory), and a process that
//! decodes a much larger image still gives that back.

/// Blocks at least this large are mapped on their own and unmapped when freed. 32 MiB is the
/// most glibc takes on 64-bit: a 4K source's planes (12 MB at 4:2:0, 25 MB at 4:4:4) and a
/// 12 MP one's at 4:2:0 (18 MB) stay below it; a 12 MP 4:4:4 source's (36 MB), a 24 MP 4:2:0
/// one's (also decoded in full for 1080: 36 MB) and a 100 Mpx PNG's do not.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory kept at the top of a heap before it is given back to the kernel.
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Sets the process's allocator thresholds ([`MMAP_THRESHOLD`], [`TRIM_THRESHOLD`]); call
/// once, first thing, in a process that runs the engine. Returns whether the allocator took
/// them (only glibc's does; elsewhere this does nothing).
pub fn keep_working_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        glibc::set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            && glibc::set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    /// `mallopt(param, value)`; false when glibc refuses the value.
    #[allow(unsafe_code)]
    pub fn set(param: libc::c_int, value: usize) -> bool {
        let Ok(value) = libc::c_int::try_from(value) else {
            return false;
        };
        // SAFETY: mallopt takes two integers, touches only malloc's own parameters under
        // malloc's lock, and is safe to call from any thread at any time.
        unsafe { libc::mallopt(param, value) == 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_thresholds() {
        // glibc refuses an mmap threshold above 32 MiB on 64-bit (HEAP_MAX_SIZE / 2).
        assert!(keep_working_memory());
    }
}
