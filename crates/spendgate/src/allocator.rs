//! The memory allocator: mimalloc (the gateway allocates per request: headers, JSON,
//! records; glibc's allocator was a tenth of its CPU under load, bench/RESULTS.md),
//! built without transparent huge pages (`no_thp`: with them, a few thousand open
//! streams held twice the memory) and told to give freed memory back to the system
//! within 10 ms rather than mimalloc 3's 1 s (10 s for its arenas), which in practice
//! meant never for a server gone quiet after a burst of streams.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` and `mi_option_arena_purge_mult` in mimalloc 3's
/// `mi_option_t` (include/mimalloc.h); the Rust bindings do not name them. The test
/// below checks that they are the options with the documented defaults.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const ARENA_PURGE_MULT: libmimalloc_sys::mi_option_t = 24;

/// Sets the purge options, unless the operator set them (`MIMALLOC_PURGE_DELAY`, ...).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set(PURGE_DELAY, 10);
    }
    if std::env::var_os("MIMALLOC_ARENA_PURGE_MULT").is_none() {
        set(ARENA_PURGE_MULT, 1);
    }
}

#[allow(unsafe_code)]
fn set(option: libmimalloc_sys::mi_option_t, value: i64) {
    // SAFETY: `mi_option_set` only stores an integer in mimalloc's option table; it may
    // be called at any time from any thread, and an option index it does not know is
    // ignored (it checks the bounds).
    unsafe { libmimalloc_sys::mi_option_set(option, value as _) }
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_option_indices_are_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() || std::env::var_os("MIMALLOC_ARENA_PURGE_MULT").is_some()
        {
            return;
        }
        // SAFETY: reads an integer from mimalloc's option table.
        let (delay, mult) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::PURGE_DELAY),
                libmimalloc_sys::mi_option_get(super::ARENA_PURGE_MULT),
            )
        };
        // Their defaults in mimalloc 3 (src/options.c), before `tune` or in a test.
        assert!(delay == 1000 || delay == 10, "purge_delay reads {delay}");
        assert!(mult == 10 || mult == 1, "arena_purge_mult reads {mult}");
    }
}
