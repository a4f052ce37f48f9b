//! Runtime faults (E07xx): what a simulated machine reports when a program does
//! something the hardware forbids or would hang on.
//!
//! Every fault names the core, the pipe, the instruction (index and assembly
//! text) and, for memory faults, the address; in a program of several
//! launches, also the launch. The CLI exits with code 3.
//!
//! | code | kind |
//! | --- | --- |
//! | E0700 | integer division by zero (scalar or vector) |
//! | E0701 | GM access outside every tensor and the workspace |
//! | E0702 | misaligned access |
//! | E0703 | local buffer access beyond its capacity |
//! | E0704 | illegal or malformed instruction at run time (an operand value out of range) |
//! | E0705 | `sync.set` of an event that is already set |
//! | E0706 | deadlock: every unit still running is waiting |
//! | E0707 | the cycle limit was exceeded |
//! | E0708 | race between two pipes (or cores) without happens-before |
//! | E0709 | same-pipe read-after-write without a barrier |
//! | E0710 | a cross-core flag counter overflowed |
//! | E0711 | a core spun (2^16 scalar instructions without pipe work or sync), or the run passed its step limit (2^24 + 64 per GM byte) |
//! | E0712 | the functional work limit was exceeded (2^26 + 4 096 per GM byte, at most 2^37) |
//! | E0713 | the run was interrupted by its caller (`RunOptions::interrupt`) |

use crate::isa::Pipe;
use std::fmt;

/// Memory spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Global memory (shared).
    Gm,
    /// L1 buffer.
    L1,
    /// Cube left operand buffer.
    L0a,
    /// Cube right operand buffer.
    L0b,
    /// Cube accumulator buffer.
    L0c,
    /// Unified (vector) buffer.
    Ub,
}

impl Space {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Space::Gm => "gm",
            Space::L1 => "l1",
            Space::L0a => "l0a",
            Space::L0b => "l0b",
            Space::L0c => "l0c",
            Space::Ub => "ub",
        }
    }
}

/// The kind of a fault (its code is [`FaultKind::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// E0700.
    DivByZero,
    /// E0701.
    OutOfBounds,
    /// E0702.
    Misaligned,
    /// E0703.
    Capacity,
    /// E0704.
    Illegal,
    /// E0705.
    DoubleSet,
    /// E0706.
    Deadlock,
    /// E0707.
    CycleLimit,
    /// E0708.
    Race,
    /// E0709.
    RawWithoutBarrier,
    /// E0710.
    CrossCoreOverflow,
    /// E0711.
    StepLimit,
    /// E0712.
    WorkLimit,
    /// E0713.
    Interrupted,
}

impl FaultKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            FaultKind::DivByZero => "E0700",
            FaultKind::OutOfBounds => "E0701",
            FaultKind::Misaligned => "E0702",
            FaultKind::Capacity => "E0703",
            FaultKind::Illegal => "E0704",
            FaultKind::DoubleSet => "E0705",
            FaultKind::Deadlock => "E0706",
            FaultKind::CycleLimit => "E0707",
            FaultKind::Race => "E0708",
            FaultKind::RawWithoutBarrier => "E0709",
            FaultKind::CrossCoreOverflow => "E0710",
            FaultKind::StepLimit => "E0711",
            FaultKind::WorkLimit => "E0712",
            FaultKind::Interrupted => "E0713",
        }
    }
    /// A short title.
    pub fn title(self) -> &'static str {
        match self {
            FaultKind::DivByZero => "integer division by zero",
            FaultKind::OutOfBounds => "out-of-bounds GM access",
            FaultKind::Misaligned => "misaligned access",
            FaultKind::Capacity => "buffer capacity exceeded",
            FaultKind::Illegal => "illegal instruction",
            FaultKind::DoubleSet => "event set twice",
            FaultKind::Deadlock => "deadlock",
            FaultKind::CycleLimit => "cycle limit exceeded",
            FaultKind::Race => "data race",
            FaultKind::RawWithoutBarrier => "read-after-write in one pipe without a barrier",
            FaultKind::CrossCoreOverflow => "cross-core flag counter overflow",
            FaultKind::StepLimit => "step limit exceeded",
            FaultKind::WorkLimit => "functional work limit exceeded",
            FaultKind::Interrupted => "interrupted",
        }
    }
}

/// A fault inside an instruction, before the engine adds where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// Kind.
    pub kind: FaultKind,
    /// Detail.
    pub message: String,
    /// The faulting address, if any.
    pub address: Option<(Space, u64)>,
}

impl Trap {
    /// A trap without an address.
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        Trap {
            kind,
            message: message.into(),
            address: None,
        }
    }
    /// A trap at an address.
    pub fn at(kind: FaultKind, space: Space, addr: u64, message: impl Into<String>) -> Self {
        Trap {
            kind,
            message: message.into(),
            address: Some((space, addr)),
        }
    }
}

/// A fault: the simulated machine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Kind (and code).
    pub kind: FaultKind,
    /// Index of the launch that faulted (0 in a single-launch program).
    pub launch: u32,
    /// Number of launches in the program (the message names the launch when
    /// there are several).
    pub launches: u32,
    /// The core, e.g. `AIV 3 (block 1, sub-block 1)`.
    pub core: String,
    /// The pipe executing the instruction.
    pub pipe: Pipe,
    /// Instruction index in its section.
    pub pc: Option<u32>,
    /// The instruction's assembly text.
    pub insn: String,
    /// The faulting address.
    pub address: Option<(Space, u64)>,
    /// Simulated cycle, from the start of the faulting launch's kernel (after
    /// its launch cost).
    pub cycle: u64,
    /// What happened, in full.
    pub message: String,
}

impl Fault {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "error[{}]: {}: {}",
            self.code(),
            self.kind.title(),
            self.message
        )?;
        write!(f, "  --> ")?;
        if self.launches > 1 {
            write!(f, "launch {}, ", self.launch)?;
        }
        write!(f, "{}, pipe {}", self.core, self.pipe.report_name())?;
        if let Some(pc) = self.pc {
            write!(f, ", instruction #{pc} `{}`", self.insn)?;
        }
        write!(f, ", cycle {}", self.cycle)?;
        if let Some((s, a)) = self.address {
            write!(f, "\n  = address: {} {a:#x}", s.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for Fault {}
