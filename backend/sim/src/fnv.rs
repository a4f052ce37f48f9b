//! FNV-1a, the 64-bit hash behind the bytecode checksum and the machine
//! fingerprint (neither needs to resist an adversary: they catch corruption
//! and mismatched machines).

/// FNV-1a, 64-bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
