//! The compiled-kernel cache on disk: NPU programs (`.tbc`) keyed by what
//! made them, so that an embedding caller (the Python package) compiling
//! the same kernel again loads it instead.
//!
//! The key is the compiler's version, the source text, the kernel's name,
//! its dims, the machine's description and the optimisation level. An entry
//! holds its whole key before its bytecode, and is trusted only when that
//! key equals the one asked for and the bytecode loads (checksum, machine
//! fingerprint and every instruction validated): a corrupt, foreign or
//! stale entry is a miss, recompiled and rewritten, never a wrong kernel.
//! The file name is a 64-bit hash of the key; a collision is a miss too.
//!
//! Where it lives: `$TESSERA_CACHE_DIR`, else `$XDG_CACHE_HOME/tessera`
//! (an absolute path; a relative one is ignored, as the XDG base-directory
//! spec says), else `~/.cache/tessera`. `TESSERA_CACHE=0` turns it off.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries start with this line, then the key's length (8 bytes, little
/// endian), the key and the bytecode.
const MAGIC: &[u8] = b"tessera-cache 1\n";

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static STALE: AtomicU64 = AtomicU64::new(0);

/// The cache's counters in this process: (entries loaded, entries missing,
/// entries found but not trusted).
pub fn counters() -> (u64, u64, u64) {
    (
        HITS.load(Ordering::Relaxed),
        MISSES.load(Ordering::Relaxed),
        STALE.load(Ordering::Relaxed),
    )
}

/// The default cache directory (`None`: turned off, or no home).
pub fn default_dir() -> Option<PathBuf> {
    if std::env::var_os("TESSERA_CACHE").is_some_and(|v| v == "0") {
        return None;
    }
    if let Some(d) = std::env::var_os("TESSERA_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    // The XDG base-directory spec: a relative XDG_CACHE_HOME is invalid
    // and ignored.
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return Some(d.join("tessera"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("tessera"))
}

/// What an entry is keyed by.
#[derive(Clone, Debug)]
pub struct Key {
    text: String,
}

impl Key {
    /// The key of `kernel` in `source` with `dims` (any order) for the
    /// machine described by `machine_toml` at optimisation level `level`.
    pub fn new(
        source: &str,
        kernel: &str,
        dims: &[(String, u64)],
        machine_toml: &str,
        level: &str,
    ) -> Key {
        let mut dims = dims.to_vec();
        dims.sort();
        let dims: Vec<String> = dims.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let text = format!(
            "tessera {}\nkernel {kernel}\ndims {}\nlevel {level}\nmachine {} bytes\n{machine_toml}\nsource {} bytes\n{source}",
            env!("CARGO_PKG_VERSION"),
            dims.join(" "),
            machine_toml.len(),
            source.len(),
        );
        Key { text }
    }

    fn file_name(&self) -> String {
        format!("{:016x}.tbc", tessera_sim::fnv::fnv1a(self.text.as_bytes()))
    }
}

/// Loads the program cached under `key` for `machine`, if an entry is there
/// and can be trusted.
pub fn load(dir: &Path, key: &Key, machine: &tessera_sim::Machine) -> Option<tessera_sim::Program> {
    let path = dir.join(key.file_name());
    let Ok(bytes) = std::fs::read(&path) else {
        MISSES.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let program = parse_entry(&bytes, key).and_then(|tbc| tessera_sim::load(tbc, machine).ok());
    match program {
        Some(p) => {
            HITS.fetch_add(1, Ordering::Relaxed);
            Some(p)
        }
        None => {
            STALE.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The bytecode of an entry whose key is `key`.
fn parse_entry<'b>(bytes: &'b [u8], key: &Key) -> Option<&'b [u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    if rest.len() < len || &rest[..len] != key.text.as_bytes() {
        return None;
    }
    Some(&rest[len..])
}

/// Stores a program under `key`. Failing to write is not an error (the
/// cache is an optimisation): the entry is simply not there next time.
/// The entry appears whole or not at all (a temporary file renamed).
pub fn store(dir: &Path, key: &Key, program: &tessera_sim::Program) {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&(key.text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(key.text.as_bytes());
    bytes.extend_from_slice(&tessera_sim::encode(program));
    let path = dir.join(key.file_name());
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        key.file_name(),
        std::process::id()
    ));
    let done = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, &bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(src: &str) -> Key {
        Key::new(src, "k", &[("N".into(), 8)], "m", "-O2")
    }

    #[test]
    fn an_entry_is_trusted_only_under_its_own_key() {
        let k = key("kernel k");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(k.text.len() as u64).to_le_bytes());
        bytes.extend_from_slice(k.text.as_bytes());
        bytes.extend_from_slice(b"TBC");
        assert_eq!(parse_entry(&bytes, &k), Some(&b"TBC"[..]));
        assert_eq!(parse_entry(&bytes, &key("kernel j")), None);
        // Truncated anywhere: not trusted.
        for cut in 0..bytes.len() - 3 {
            assert_eq!(parse_entry(&bytes[..cut], &k), None, "cut at {cut}");
        }
    }

    #[test]
    fn dims_key_the_same_in_any_order() {
        let a = Key::new("s", "k", &[("M".into(), 1), ("N".into(), 2)], "m", "-O2");
        let b = Key::new("s", "k", &[("N".into(), 2), ("M".into(), 1)], "m", "-O2");
        let c = Key::new("s", "k", &[("N".into(), 1), ("M".into(), 2)], "m", "-O2");
        assert_eq!(a.text, b.text);
        assert_ne!(a.text, c.text);
    }
}
