//! The `.tbc` bytecode format: [`encode`], [`decode`] and the validating [`load`].
//!
//! Layout (all integers little-endian; `str` is a u16 byte length + UTF-8):
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | magic `7F 54 42 43` (`\x7fTBC`) |
//! | 4 | format version, u16 (= [`FORMAT_VERSION`]) |
//! | 6 | reserved, u16 = 0 |
//! | 8 | machine fingerprint, u64 |
//! | 16 | machine name: str; kernel name: str |
//! | … | workspace bytes u64; launches u16 |
//! | … | params u16, results u16; each tensor: name str, dtype u8, rank u8, dims u64 × rank |
//! | … | each launch, in order: block_dim u32; sections u8; each section: core kind u8 (0 aic, 1 aiv, 2 core), instruction count u32, code bytes u32, code |
//! | end − 8 | checksum: FNV-1a 64 of every byte before it |
//!
//! Version 1 (single launch) had `block_dim u32` before the workspace and no
//! launch count; this crate reads only the current version.
//!
//! An instruction is its opcode byte (list order in [`crate::isa`]) followed by
//! its fields in declaration order. The loader checks everything — magic,
//! version, checksum, lengths, every opcode and field, the machine fingerprint
//! and [`Program::validate`] — before anything executes, so a corrupt or
//! hostile file can only produce a [`LoadError`] (E09xx), never a panic.

use crate::fnv::fnv1a;
use crate::isa::{CoreKind, Dt, Insn, Reader};
use crate::machine::Machine;
use crate::program::{At, Launch, Program, Section, TensorDecl};
use std::fmt;

/// Magic bytes at the start of every `.tbc` file.
pub const MAGIC: [u8; 4] = [0x7f, b'T', b'B', b'C'];
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 2;

/// A `.tbc` file that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// `E0901`…`E0907` (see `docs/assembly.md`).
    pub code: &'static str,
    /// Byte offset in the file where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error[{}]: bytecode offset {}: {}",
            self.code, self.offset, self.message
        )
    }
}

impl std::error::Error for LoadError {}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&b[..n]);
}

fn kind_code(k: CoreKind) -> u8 {
    match k {
        CoreKind::Aic => 0,
        CoreKind::Aiv => 1,
        CoreKind::Core => 2,
    }
}

/// Encodes a program.
pub fn encode(p: &Program) -> Vec<u8> {
    encode_marked(p).0
}

/// Where [`encode`] puts each part of a program (byte offsets), to locate
/// [`Program::validate`]'s errors in a file: the encoding is canonical, so
/// a decoded program encodes to the bytes it came from.
#[derive(Default)]
struct Marks {
    /// The workspace size.
    workspace: usize,
    /// The launch count (the argument counts follow it).
    launches: usize,
    /// Each parameter and result, in [`Program::args`] order.
    args: Vec<usize>,
    /// Each launch's block count.
    launch: Vec<usize>,
    /// Each section's kind byte, per launch.
    section: Vec<Vec<usize>>,
    /// Each instruction, per launch and section.
    insn: Vec<Vec<Vec<usize>>>,
}

impl Marks {
    fn of(&self, at: At) -> usize {
        match at {
            At::Workspace => Some(self.workspace),
            At::Launches => Some(self.launches),
            At::Args => Some(self.launches + 2),
            At::Arg(i) => self.args.get(i).copied(),
            At::Launch(l) => self.launch.get(l).copied(),
            At::Section(l, s) => self.section.get(l).and_then(|v| v.get(s)).copied(),
            At::Insn((l, s, i)) => self
                .insn
                .get(l)
                .and_then(|v| v.get(s))
                .and_then(|v| v.get(i))
                .copied(),
        }
        .unwrap_or(0)
    }
}

fn encode_marked(p: &Program) -> (Vec<u8>, Marks) {
    let mut m = Marks::default();
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&p.fingerprint.to_le_bytes());
    put_str(&mut out, &p.machine);
    put_str(&mut out, &p.kernel);
    m.workspace = out.len();
    out.extend_from_slice(&p.workspace.to_le_bytes());
    m.launches = out.len();
    out.extend_from_slice(&(p.launches.len() as u16).to_le_bytes());
    out.extend_from_slice(&(p.params.len() as u16).to_le_bytes());
    out.extend_from_slice(&(p.results.len() as u16).to_le_bytes());
    for t in p.params.iter().chain(p.results.iter()) {
        m.args.push(out.len());
        put_str(&mut out, &t.name);
        out.push(t.dtype as u8);
        out.push(t.shape.len() as u8);
        for d in &t.shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
    for l in &p.launches {
        m.launch.push(out.len());
        out.extend_from_slice(&l.block_dim.to_le_bytes());
        out.push(l.sections.len() as u8);
        let (mut sections, mut insns) = (Vec::new(), Vec::new());
        for s in &l.sections {
            sections.push(out.len());
            out.push(kind_code(s.kind));
            out.extend_from_slice(&(s.insns.len() as u32).to_le_bytes());
            let mut code = Vec::new();
            let mut starts = Vec::new();
            for i in &s.insns {
                starts.push(code.len());
                i.encode(&mut code);
            }
            out.extend_from_slice(&(code.len() as u32).to_le_bytes());
            let at = out.len();
            insns.push(starts.into_iter().map(|x| at + x).collect());
            out.extend_from_slice(&code);
        }
        m.section.push(sections);
        m.insn.push(insns);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    (out, m)
}

struct Dec<'a> {
    r: Reader<'a>,
}

impl Dec<'_> {
    fn err(&self, message: impl Into<String>) -> LoadError {
        LoadError {
            code: "E0905",
            offset: self.r.pos,
            message: message.into(),
        }
    }
    fn u8(&mut self) -> Result<u8, LoadError> {
        self.r.u8().map_err(|_| self.err("the header is truncated"))
    }
    fn u16(&mut self) -> Result<u16, LoadError> {
        self.r
            .u16()
            .map_err(|_| self.err("the header is truncated"))
    }
    fn u32(&mut self) -> Result<u32, LoadError> {
        self.r
            .u32()
            .map_err(|_| self.err("the header is truncated"))
    }
    fn u64(&mut self) -> Result<u64, LoadError> {
        self.r
            .u64()
            .map_err(|_| self.err("the header is truncated"))
    }
    fn str(&mut self, what: &str) -> Result<String, LoadError> {
        let n = self.u16()?;
        let at = self.r.pos;
        let b = self
            .r
            .take(usize::from(n))
            .map_err(|_| self.err(format!("the {what} is truncated")))?;
        String::from_utf8(b.to_vec()).map_err(|_| LoadError {
            code: "E0905",
            offset: at,
            message: format!("the {what} is not UTF-8"),
        })
    }
}

/// Decodes a file's structure without a machine (for `disasm`): magic, version,
/// checksum, header and every instruction are checked, but not the fingerprint
/// nor the per-machine validity of instructions.
pub fn decode(bytes: &[u8]) -> Result<Program, LoadError> {
    if bytes.len() < 4 || bytes[..4] != MAGIC {
        return Err(LoadError {
            code: "E0901",
            offset: 0,
            message: "not a Tessera bytecode file (bad magic)".into(),
        });
    }
    if bytes.len() < 8 + 8 + 8 {
        return Err(LoadError {
            code: "E0905",
            offset: bytes.len(),
            message: "the file is truncated".into(),
        });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(LoadError {
            code: "E0902",
            offset: 4,
            message: format!(
                "format version {version} is not supported (this simulator reads version {FORMAT_VERSION})"
            ),
        });
    }
    let body_len = bytes.len() - 8;
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[body_len..]);
    let stored = u64::from_le_bytes(sum);
    let actual = fnv1a(&bytes[..body_len]);
    if stored != actual {
        return Err(LoadError {
            code: "E0904",
            offset: body_len,
            message: format!(
                "checksum mismatch (stored {stored:#018x}, computed {actual:#018x}): the file is corrupt"
            ),
        });
    }
    let body = &bytes[..body_len];
    let mut d = Dec {
        r: Reader::new(body),
    };
    d.r.pos = 6;
    if d.u16()? != 0 {
        return Err(LoadError {
            code: "E0905",
            offset: 6,
            message: "reserved header field is not zero".into(),
        });
    }
    let fingerprint = d.u64()?;
    let machine_at = d.r.pos;
    let machine = d.str("machine name")?;
    // As a machine description's name: printed by messages and `disasm`.
    if machine.is_empty() || !crate::machine::printable_name(&machine) {
        return Err(LoadError {
            code: "E0905",
            offset: machine_at,
            message: format!(
                "the machine name {machine:?} is empty, longer than 64 characters or holds a control character"
            ),
        });
    }
    let at = d.r.pos;
    let kernel = d.str("kernel name")?;
    // Names as the assembler takes them: a result names its output file.
    if !crate::asm::is_ident(&kernel) {
        return Err(LoadError {
            code: "E0905",
            offset: at,
            message: format!("the kernel name {kernel:?} is not an identifier"),
        });
    }
    let workspace = d.u64()?;
    let n_launches = d.u16()?;
    let n_params = d.u16()?;
    let n_results = d.u16()?;
    let mut tensors = Vec::new();
    for _ in 0..(u32::from(n_params) + u32::from(n_results)) {
        let name_at = d.r.pos;
        let name = d.str("tensor name")?;
        if !crate::asm::is_ident(&name) {
            return Err(LoadError {
                code: "E0905",
                offset: name_at,
                message: format!("the tensor name {name:?} is not an identifier"),
            });
        }
        // Parameters and results are two namespaces, as in the assembler.
        let first = if tensors.len() < usize::from(n_params) {
            0
        } else {
            usize::from(n_params)
        };
        if tensors[first..].iter().any(|t: &TensorDecl| t.name == name) {
            return Err(LoadError {
                code: "E0905",
                offset: name_at,
                message: format!("the tensor name `{name}` is declared twice"),
            });
        }
        let at = d.r.pos;
        let dt = d.u8()?;
        let dtype = Dt::ALL.get(usize::from(dt)).copied().ok_or(LoadError {
            code: "E0905",
            offset: at,
            message: format!("invalid dtype {dt}"),
        })?;
        let rank = d.u8()?;
        if rank > 16 {
            return Err(LoadError {
                code: "E0905",
                offset: at + 1,
                message: format!("rank {rank} exceeds 16"),
            });
        }
        let mut shape = Vec::new();
        for _ in 0..rank {
            shape.push(d.u64()?);
        }
        tensors.push(TensorDecl { name, dtype, shape });
    }
    let results = tensors.split_off(usize::from(n_params));
    let params = tensors;
    let mut launches = Vec::new();
    for li in 0..usize::from(n_launches) {
        // `launch 1: ` in messages when the file has several launches.
        let pre = if n_launches > 1 {
            format!("launch {li}: ")
        } else {
            String::new()
        };
        let launch_at = d.r.pos;
        let truncated = |offset: usize, what: &str| LoadError {
            code: "E0905",
            offset,
            message: format!("{pre}the {what} is truncated"),
        };
        let block_dim = d.u32().map_err(|_| truncated(launch_at, "launch header"))?;
        let n_sections = d.u8().map_err(|_| truncated(launch_at, "launch header"))?;
        let mut sections = Vec::new();
        for _ in 0..n_sections {
            let at = d.r.pos;
            let kind = match d.u8().map_err(|_| truncated(at, "section header"))? {
                0 => CoreKind::Aic,
                1 => CoreKind::Aiv,
                2 => CoreKind::Core,
                k => {
                    return Err(LoadError {
                        code: "E0905",
                        offset: at,
                        message: format!("{pre}invalid section kind {k}"),
                    });
                }
            };
            let n_insns = d.u32().map_err(|_| truncated(at, "section header"))? as usize;
            let code_len = d.u32().map_err(|_| truncated(at, "section header"))? as usize;
            let code_at = d.r.pos;
            let code = d.r.take(code_len).map_err(|_| LoadError {
                code: "E0905",
                offset: code_at,
                message: format!("{pre}a code section is truncated"),
            })?;
            if n_insns > code_len {
                return Err(LoadError {
                    code: "E0905",
                    offset: at + 1,
                    message: format!("{pre}{n_insns} instructions cannot fit in {code_len} bytes"),
                });
            }
            let mut cr = Reader::new(code);
            let mut insns = Vec::with_capacity(n_insns);
            while !cr.at_end() {
                let start = cr.pos;
                let insn = Insn::decode(&mut cr).map_err(|e| LoadError {
                    code: "E0906",
                    offset: code_at + start,
                    message: format!(
                        "{pre}malformed instruction #{} of section .{}: {e}",
                        insns.len(),
                        kind.name()
                    ),
                })?;
                insns.push(insn);
            }
            if insns.len() != n_insns {
                return Err(LoadError {
                    code: "E0905",
                    offset: at + 1,
                    message: format!(
                        "{pre}section .{} declares {n_insns} instructions but holds {}",
                        kind.name(),
                        insns.len()
                    ),
                });
            }
            sections.push(Section { kind, insns });
        }
        launches.push(Launch {
            block_dim,
            sections,
        });
    }
    if !d.r.at_end() {
        return Err(LoadError {
            code: "E0905",
            offset: d.r.pos,
            message: "trailing bytes after the last launch".into(),
        });
    }
    Ok(Program {
        kernel,
        machine,
        fingerprint,
        params,
        results,
        workspace,
        launches,
    })
}

/// Decodes and validates a file for `machine`.
pub fn load(bytes: &[u8], machine: &Machine) -> Result<Program, LoadError> {
    let p = decode(bytes)?;
    let fp = machine.fingerprint();
    if p.fingerprint != fp {
        return Err(LoadError {
            code: "E0903",
            offset: 8,
            message: format!(
                "the file was built for machine `{}` (fingerprint {:#018x}), not for `{}` (fingerprint {fp:#018x})",
                p.machine, p.fingerprint, machine.name
            ),
        });
    }
    p.validate(machine).map_err(|(at, msg)| LoadError {
        code: "E0907",
        offset: encode_marked(&p).1.of(at),
        message: match at {
            At::Insn((li, si, ii)) => {
                let s = &p.launches[li].sections[si];
                format!(
                    "{}instruction #{ii} `{}` of section .{}: {msg}",
                    p.launch_prefix(li),
                    s.insns[ii],
                    s.kind.name()
                )
            }
            _ => msg,
        },
    })?;
    Ok(p)
}
