//! The structured program a stage template builds: micro-ops that know their
//! pipe and the on-chip bytes they read and write, scalar instructions,
//! loops and guarded blocks. The sync pass (`sync.rs`) derives every
//! `sync.set`/`sync.wait`/`sync.barrier` from these accesses; [`print`]
//! turns the result into assembly text.

use std::fmt::Write;

/// An execution pipe (as the assembler names them).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pipe {
    /// Scalar unit (issues everything; executes at once).
    S,
    /// GM → L1/UB.
    Mte2,
    /// L1 → L0A/L0B.
    Mte1,
    /// The cube.
    M,
    /// The vector unit.
    V,
    /// UB → GM/L1.
    Mte3,
    /// L0C → GM (split machines).
    Fix,
}

impl Pipe {
    /// The assembler's name.
    pub fn name(self) -> &'static str {
        match self {
            Pipe::S => "s",
            Pipe::Mte2 => "mte2",
            Pipe::Mte1 => "mte1",
            Pipe::M => "m",
            Pipe::V => "v",
            Pipe::Mte3 => "mte3",
            Pipe::Fix => "fix",
        }
    }
}

/// An on-chip memory space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// L1.
    L1,
    /// L0A.
    L0a,
    /// L0B.
    L0b,
    /// L0C.
    L0c,
    /// UB.
    Ub,
}

/// Bytes of one copy of one local buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region {
    /// The space.
    pub space: Space,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Which buffer copy this belongs to (keys event ids).
    pub slot: u32,
}

impl Region {
    /// Whether two regions share a byte.
    pub fn overlaps(&self, o: &Region) -> bool {
        self.space == o.space && self.start < o.end && o.start < self.end
    }
}

/// How an access uses its region.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Accumulates in place (`mmad` into L0C): a write that needs no barrier
    /// after another accumulation on the same pipe.
    Accumulate,
}

/// A pipe instruction with its accesses.
#[derive(Clone, Debug, PartialEq)]
pub struct MicroOp {
    /// The assembly text.
    pub text: String,
    /// The pipe it runs on.
    pub pipe: Pipe,
    /// On-chip accesses (GM accesses never conflict inside a stage).
    pub accesses: Vec<(Access, Region)>,
}

/// A piece of a structured program.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A pipe instruction.
    Op(MicroOp),
    /// A scalar instruction (no on-chip access).
    Scalar(String),
    /// `top: header…; body…; latch…; s.jmp top; end:` — the header's
    /// branches exit to the loop's end label.
    Loop {
        /// Unique label stem.
        label: String,
        /// Scalar instructions that may branch to `{label}_end`.
        header: Vec<String>,
        /// The body.
        body: Vec<Item>,
        /// Scalar instructions at the end of each iteration.
        latch: Vec<String>,
    },
    /// `branch-to-{label}_skip; body…; {label}_skip:` — the body runs when
    /// the branch is not taken.
    Guard {
        /// Unique label stem.
        label: String,
        /// A branch to `{label}_skip` (text), e.g. `s.br.ge r3, r4, L_skip`.
        skip_if: String,
        /// The body.
        body: Vec<Item>,
    },
    /// A synchronisation instruction (inserted by the sync pass).
    Sync(SyncInsn),
}

/// A synchronisation instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncInsn {
    /// `sync.set src, dst, id`.
    Set(Pipe, Pipe, u32),
    /// `sync.wait src, dst, id`.
    Wait(Pipe, Pipe, u32),
    /// `sync.barrier p`.
    Barrier(Pipe),
}

impl SyncInsn {
    fn text(&self) -> String {
        match self {
            SyncInsn::Set(a, b, i) => format!("sync.set {}, {}, {i}", a.name(), b.name()),
            SyncInsn::Wait(a, b, i) => format!("sync.wait {}, {}, {i}", a.name(), b.name()),
            SyncInsn::Barrier(p) => format!("sync.barrier {}", p.name()),
        }
    }
}

/// Prints a structured program as assembly lines (indented by 4).
pub fn print(items: &[Item], out: &mut String) {
    for it in items {
        match it {
            Item::Op(op) => {
                let _ = writeln!(out, "    {}", op.text);
            }
            Item::Scalar(s) => {
                let _ = writeln!(out, "    {s}");
            }
            Item::Sync(s) => {
                let _ = writeln!(out, "    {}", s.text());
            }
            Item::Loop {
                label,
                header,
                body,
                latch,
            } => {
                let _ = writeln!(out, "{label}:");
                for h in header {
                    let _ = writeln!(out, "    {h}");
                }
                print(body, out);
                for l in latch {
                    let _ = writeln!(out, "    {l}");
                }
                let _ = writeln!(out, "    s.jmp {label}");
                let _ = writeln!(out, "{label}_end:");
            }
            Item::Guard {
                label,
                skip_if,
                body,
            } => {
                let _ = writeln!(out, "    {skip_if}");
                print(body, out);
                let _ = writeln!(out, "{label}_skip:");
            }
        }
    }
}

/// Scalar registers for a template: `r0`–`r31`, handed out in order.
#[derive(Debug, Default)]
pub struct Regs {
    next: u8,
}

/// The number of general registers templates may allocate: `r0`–`r30`.
/// `r31` is [`SCRATCH`], reserved for [`legalize_immediates`].
pub const NUM_REGS: u8 = 31;

/// The register that carries an immediate too wide for its operand.
pub const SCRATCH: &str = "r31";

/// Rewrites every scalar instruction of assembly `text` with an integer
/// operand outside the 32-bit immediate range (a GM offset into a workspace
/// of several GiB, say) into `s.li r31, IMM` (64-bit) followed by the
/// instruction reading `r31`. Templates compute offsets in `u64`, so only
/// this step needs to know the encoding's immediate width.
pub fn legalize_immediates(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        let wide = |o: &str| o.parse::<i128>().is_ok_and(|v| i32::try_from(v).is_err());
        if !t.starts_with("s.") || t.starts_with("s.li ") || t.starts_with("s.lif ") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (mnemonic, rest) = t.split_once(' ').unwrap_or((t, ""));
        let ops: Vec<&str> = rest.split(", ").collect();
        let n = ops.iter().filter(|o| wide(o)).count();
        if n == 0 {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if n > 1 {
            return Err(format!("two wide immediates in `{t}`"));
        }
        let mut fixed = Vec::with_capacity(ops.len());
        for o in ops {
            if wide(o) {
                out.push_str(&format!("{indent}s.li {SCRATCH}, {o}\n"));
                fixed.push(SCRATCH);
            } else {
                fixed.push(o);
            }
        }
        out.push_str(&format!("{indent}{mnemonic} {}\n", fixed.join(", ")));
    }
    Ok(out)
}

impl Regs {
    /// A fresh register.
    pub fn get(&mut self) -> Result<String, String> {
        if self.next >= NUM_REGS {
            return Err("the stage template ran out of scalar registers".to_string());
        }
        let r = format!("r{}", self.next);
        self.next += 1;
        Ok(r)
    }
}

/// Unique labels within one section.
#[derive(Debug, Default)]
pub struct Labels {
    next: u32,
}

impl Labels {
    /// A fresh label stem.
    pub fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}{}", self.next)
    }
}

#[cfg(test)]
mod legalize_tests {
    use super::legalize_immediates;

    #[test]
    fn wide_immediates_go_through_the_scratch_register() {
        let text = "L:\n    s.add r3, r3, 2147483648\n    s.add r3, r3, 2147483647\n    s.br.ge r2, -4294967296, L\n    s.li r4, 4294967296\n";
        assert_eq!(
            legalize_immediates(text).unwrap(),
            "L:\n    s.li r31, 2147483648\n    s.add r3, r3, r31\n    s.add r3, r3, 2147483647\n    s.li r31, -4294967296\n    s.br.ge r2, r31, L\n    s.li r4, 4294967296\n"
        );
    }
}
