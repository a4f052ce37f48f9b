//! The files a command reads and writes, and the limits of what a run may
//! hold (`docs/cli.md`, "Files and limits").
//!
//! - Every read is bounded by what its format can need ([`read`]), so a
//!   huge file or `/dev/zero` is an error, not an allocation.
//! - Every write goes to a temporary file beside its target, renamed once
//!   complete ([`write()`]): a failure leaves the old file or nothing. The
//!   files of one command are renamed only once all are complete
//!   ([`Batch`]).
//! - No output may be a file the command reads, nor another of its outputs
//!   ([`Claims`], `E0607`): nothing the user gave is overwritten.
//! - The tensors a run holds on the host are bounded before any is
//!   allocated ([`MAX_HOST_ELEMENTS`], [`check_host_tensor`]).

use crate::driver::Failure;
use std::io::Read;
use std::path::{Path, PathBuf};
use tessera_ir::{Code, Diagnostic, TensorType};

/// The largest source file (`.tsr`, `.s`) read: 16 MiB.
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;
/// The largest tuning file read: 16 MiB (tens of thousands of entries).
pub const MAX_TUNING_BYTES: u64 = 16 << 20;
/// The largest `.tbc` file read: 256 MiB.
pub const MAX_BYTECODE_BYTES: u64 = 256 << 20;
/// The most elements one tensor of a run may have on the host: an input
/// read or drawn, an output written, a value of the reference interpreter
/// (2^24; 128 MiB as the f64 values the host computes with).
pub const MAX_HOST_ELEMENTS: u64 = 1 << 24;
/// The largest `.npy` file read: a header and `MAX_HOST_ELEMENTS` elements
/// of at most 8 bytes.
pub const MAX_NPY_BYTES: u64 = (1 << 20) + MAX_HOST_ELEMENTS * 8;

fn cannot(what: impl std::fmt::Display) -> Failure {
    Failure::input(vec![Diagnostic::new(Code::E0600, what.to_string())])
}

/// Reads `path`, failing (`E0600`) when it is unreadable or longer than
/// `max` bytes (`what` names the kind of file for the message).
pub fn read(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, Failure> {
    read_raw(path, max, what).map_err(|e| cannot(e.message()))
}

/// Why [`read_raw`] failed, with its message.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadFailure {
    /// The file could not be opened or read.
    Unreadable(String),
    /// The file is longer than its kind of file can be.
    TooLarge(String),
}

impl ReadFailure {
    /// The message.
    pub fn message(self) -> String {
        match self {
            ReadFailure::Unreadable(m) | ReadFailure::TooLarge(m) => m,
        }
    }
}

/// [`read`] with the failure's kind and message (for callers that build
/// their own diagnostic: a too-large `.npy` input is malformed, `E0601`).
pub fn read_raw(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, ReadFailure> {
    let unreadable = |e: std::io::Error| {
        ReadFailure::Unreadable(format!("cannot read `{}`: {e}", path.display()))
    };
    let f = std::fs::File::open(path).map_err(unreadable)?;
    let too_large = || {
        ReadFailure::TooLarge(format!(
            "`{}` is larger than {max} bytes, more than any {what} can need",
            path.display()
        ))
    };
    // A regular file states its length (checked before reading, and the
    // buffer sized once); a pipe or device is read up to the limit.
    let stated = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if stated.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(stated.map_or(0, |n| n as usize + 1));
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so `path` is either untouched or complete. A symbolic link
/// is written through (its target replaced, the link kept); a device or a
/// pipe (`/dev/null`, `/dev/stdout`) is written to directly, never replaced
/// by a file; a directory is an error.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut batch = Batch::default();
    batch.add(path, bytes.to_vec());
    batch.commit()
}

/// Files a command writes together: nothing is put in place until every
/// one of them was written beside its target ([`Batch::commit`]), so a
/// failure while writing (a directory where a file goes, a full disk)
/// leaves every path as it was and no temporary file behind. Only a rename
/// failing part way (the bytes are all written by then) leaves the files
/// renamed before it in place.
#[derive(Default)]
pub struct Batch {
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// A file of a [`Batch`] written beside its target, or written already (a
/// device or a stream, which has no temporary file).
enum Staged {
    Temp { tmp: PathBuf, target: PathBuf },
    Written,
}

impl Batch {
    /// Adds a file to write at [`Batch::commit`].
    pub fn add(&mut self, path: &Path, bytes: Vec<u8>) {
        self.files.push((path.to_path_buf(), bytes));
    }

    /// Writes every file: each regular one to a temporary file beside it,
    /// then, once all are complete, renames them into place. A device or a
    /// stream is written last, directly.
    pub fn commit(self) -> Result<(), Failure> {
        // Regular files first: a device's write cannot be taken back.
        let (devices, regular): (Vec<_>, Vec<_>) =
            self.files.into_iter().partition(|(p, _)| is_device(p));
        // A directory where a file goes is refused before anything is made.
        if let Some((path, _)) = regular
            .iter()
            .find(|(p, _)| std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
        {
            return Err(cannot(format!(
                "cannot write `{}`: it is a directory",
                path.display()
            )));
        }
        let mut staged = Vec::new();
        for (path, bytes) in &regular {
            match stage(path, bytes) {
                Ok(s) => staged.push((path, s)),
                Err(e) => {
                    remove_temps(staged.iter().map(|(_, s)| s));
                    return Err(e);
                }
            }
        }
        for (i, (path, s)) in staged.iter().enumerate() {
            if let Staged::Temp { tmp, target } = s
                && let Err(e) = std::fs::rename(tmp, target)
            {
                remove_temps(staged[i..].iter().map(|(_, s)| s));
                return Err(cannot(format!("cannot write `{}`: {e}", path.display())));
            }
        }
        for (path, bytes) in &devices {
            stage(path, bytes)?;
        }
        Ok(())
    }
}

fn remove_temps<'a>(staged: impl Iterator<Item = &'a Staged>) {
    for s in staged {
        if let Staged::Temp { tmp, .. } = s {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Whether `path` is written to directly rather than replaced: one of the
/// process's streams, or an existing device or pipe.
fn is_device(path: &Path) -> bool {
    stream(path).is_some() || std::fs::metadata(path).is_ok_and(|m| !m.is_dir() && !m.is_file())
}

/// The process's own stream that `path` names (`1` standard output, `2`
/// standard error).
fn stream(path: &Path) -> Option<u8> {
    match path.to_str() {
        Some("/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1") => Some(1),
        Some("/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2") => Some(2),
        _ => None,
    }
}

/// Writes `bytes` beside `path` (a device or a stream: to it), ready to be
/// renamed into place.
fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, Failure> {
    let failed = |e: std::io::Error| cannot(format!("cannot write `{}`: {e}", path.display()));
    // The process's own streams, whatever they are redirected to (a file
    // behind `/dev/stdout` is appended to as the shell opened it, not
    // replaced).
    match stream(path) {
        Some(1) => {
            return std::io::Write::write_all(&mut std::io::stdout(), bytes)
                .map(|()| Staged::Written)
                .map_err(failed);
        }
        Some(_) => {
            return std::io::Write::write_all(&mut std::io::stderr(), bytes)
                .map(|()| Staged::Written)
                .map_err(failed);
        }
        None => {}
    }
    // (A directory was refused before anything was staged.)
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            return std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
                .map(|()| Staged::Written)
                .map_err(failed);
        }
        _ => {}
    }
    // A link is written through, also a dangling one (its target is made).
    let target = path
        .canonicalize()
        .unwrap_or_else(|_| match std::fs::read_link(path) {
            Ok(t) if t.is_absolute() => t,
            Ok(t) => path.parent().unwrap_or(Path::new("")).join(t),
            Err(_) => path.to_path_buf(),
        });
    // A file in a directory not made yet (`--stats-json out/s.json` before
    // the outputs make `out`) gets its directory, as `--out-dir` does.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return Err(cannot(format!("cannot create `{}`: {e}", dir.display())));
    }
    let tmp = temp_beside(&target);
    // The temporary file is made new (a link planted under its name is
    // removed, never followed).
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
    };
    let file = create().or_else(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            std::fs::remove_file(&tmp)?;
            create()
        } else {
            Err(e)
        }
    });
    if let Err(e) = file.and_then(|mut f| std::io::Write::write_all(&mut f, bytes)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(Staged::Temp { tmp, target })
}

/// Whether `path` names a device or one of the process's streams
/// (`/dev/…`, `/proc/self/fd/…`): never read back as an earlier output
/// (`tune -o /dev/stdout` has no file to add to).
pub fn is_stream(path: &Path) -> bool {
    path.starts_with("/dev") || path.starts_with("/proc/self/fd")
}

/// `DIR/.NAME.partial` for `DIR/NAME`.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial"))
}

/// What the same file is called whichever way it was written: its
/// canonical path, or for one that does not exist yet, the canonical path
/// of its deepest existing ancestor with the rest of the path applied as
/// writing it will (a missing `nodir/..` is made, then left: the same
/// directory).
fn identity(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
            std::path::Component::Prefix(_) | std::path::Component::RootDir => out.push(c),
        }
    }
    out
}

/// The files a command reads and writes, so that an output never replaces
/// an input or another output (`E0607`).
#[derive(Default)]
pub struct Claims {
    inputs: Vec<(PathBuf, String)>,
    outputs: Vec<(PathBuf, String)>,
}

impl Claims {
    /// Records a file the command reads (`role` names it in messages).
    pub fn input(&mut self, path: &Path, role: impl Into<String>) {
        self.inputs.push((identity(path), role.into()));
    }

    /// Records a tuning file named with `--tuning`.
    pub fn tuning(&mut self, tuning: Option<&Path>) {
        if let Some(t) = tuning {
            self.input(t, "tuning file");
        }
    }

    /// Records the machine description, when `--machine` names a file
    /// rather than a built-in machine.
    pub fn machine(&mut self, machine: Option<&str>) {
        if let Some(m) = machine
            && Path::new(m).is_file()
        {
            self.input(Path::new(m), "machine file");
        }
    }

    /// Records a file the command will write; refused when it is one of
    /// the inputs or already an output.
    pub fn output(&mut self, path: &Path, role: impl Into<String>) -> Result<(), Failure> {
        let id = identity(path);
        let role = role.into();
        let clash = self
            .inputs
            .iter()
            .map(|(p, r)| (p, format!("the {r}")))
            .chain(
                self.outputs
                    .iter()
                    .map(|(p, r)| (p, format!("also the {r}"))),
            )
            .find(|(p, _)| **p == id);
        if let Some((_, other)) = clash {
            return Err(Failure::input(vec![
                Diagnostic::new(
                    Code::E0607,
                    format!("`{}` would be written as the {role}, but it is {other}", path.display()),
                )
                .help("choose another path: Tessera never overwrites a file it reads, nor writes one file twice"),
            ]));
        }
        // A path under a file (`--out-dir` naming a file) cannot be written:
        // say so now, before any work, not after a long simulation.
        if let Some(blocker) = path
            .ancestors()
            .skip(1)
            .find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
        {
            return Err(cannot(format!(
                "cannot write the {role} `{}`: `{}` is not a directory",
                path.display(),
                blocker.display()
            )));
        }
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(cannot(format!(
                "cannot write the {role} `{}`: it is a directory",
                path.display()
            )));
        }
        self.outputs.push((id, role));
        Ok(())
    }
}

/// Refuses a tensor of `ty` the host would hold past [`MAX_HOST_ELEMENTS`]
/// (`E0503`), before anything is allocated; `what` names it.
pub fn host_tensor(what: &str, ty: &TensorType) -> Result<(), Diagnostic> {
    if ty
        .shape
        .num_elements()
        .is_some_and(|n| n <= MAX_HOST_ELEMENTS)
    {
        return Ok(());
    }
    Err(Diagnostic::new(
        Code::E0503,
        format!(
            "{what} ({ty}) has {} elements; a run holds at most {MAX_HOST_ELEMENTS} per tensor on the host",
            ty.shape.product_text()
        ),
    )
    .help("`tessera bench` simulates timing without data, at any size the machine's GM holds"))
}

/// [`host_tensor`] as a command's failure.
pub fn check_host_tensor(what: &str, ty: &TensorType) -> Result<(), Failure> {
    host_tensor(what, ty).map_err(|d| Failure::input(vec![d]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tessera-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_device_is_written_to_not_replaced() {
        write(Path::new("/dev/null"), b"x").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(
            m.file_type().is_char_device(),
            "/dev/null is still a device"
        );
    }

    #[test]
    fn a_link_is_written_through_and_a_directory_refused() {
        let d = scratch("link");
        std::fs::write(d.join("real.toml"), b"old").unwrap();
        std::os::unix::fs::symlink(d.join("real.toml"), d.join("link.toml")).unwrap();
        write(&d.join("link.toml"), b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(d.join("link.toml"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(d.join("real.toml")).unwrap(), b"new");
        assert!(write(&d, b"x").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A batch whose last file cannot be written puts none in place: the
    /// files before it keep their old contents (or stay absent) and no
    /// temporary file is left.
    #[test]
    fn a_batch_writes_all_of_its_files_or_none() {
        let d = scratch("batch");
        std::fs::write(d.join("old.npy"), b"old").unwrap();
        std::fs::create_dir(d.join("dir.npy")).unwrap();
        let mut batch = Batch::default();
        batch.add(&d.join("old.npy"), b"new".to_vec());
        batch.add(&d.join("sub/new.json"), b"{}".to_vec());
        batch.add(&d.join("dir.npy"), b"x".to_vec());
        assert!(batch.commit().is_err());
        assert_eq!(std::fs::read(d.join("old.npy")).unwrap(), b"old");
        assert!(!d.join("sub/new.json").exists());
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["dir.npy", "old.npy"]);
        // Past the check for directories (a full disk, say), the files
        // staged before the failure are removed again.
        let mut batch = Batch::default();
        batch.add(&d.join("old.npy"), b"new".to_vec());
        batch.add(&d.join("old.npy/x"), b"x".to_vec());
        assert!(batch.commit().is_err());
        assert_eq!(std::fs::read(d.join("old.npy")).unwrap(), b"old");
        assert!(!temp_beside(&d.join("old.npy")).exists());
        let mut batch = Batch::default();
        batch.add(&d.join("old.npy"), b"new".to_vec());
        batch.add(&d.join("sub/new.json"), b"{}".to_vec());
        batch.commit().unwrap();
        assert_eq!(std::fs::read(d.join("old.npy")).unwrap(), b"new");
        assert_eq!(std::fs::read(d.join("sub/new.json")).unwrap(), b"{}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_path_through_a_missing_directory_is_the_file_it_will_be() {
        let d = scratch("identity");
        std::fs::write(d.join("a.tsr"), b"").unwrap();
        assert_eq!(
            identity(&d.join("nodir/../a.tsr")),
            identity(&d.join("a.tsr"))
        );
        assert_eq!(
            identity(&d.join("x/y/../../a.tsr")),
            identity(&d.join("a.tsr"))
        );
        assert_ne!(identity(&d.join("nodir/a.tsr")), identity(&d.join("a.tsr")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
