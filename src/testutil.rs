//! Helpers shared by unit tests.

/// A deterministic xorshift64 generator: reproducible "random" test inputs without a
/// dependency.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
