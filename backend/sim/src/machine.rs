//! Machine descriptions: the TOML schema, the two built-ins and validation.
//!
//! A [`Machine`] is every parameter of `shared/spec/machine.md`; nothing about
//! the machine is hard-coded anywhere else in the simulator. Descriptions are
//! loaded with [`Machine::from_toml`] (or [`Machine::load`], which also accepts a
//! built-in name) and validated on load: an invalid description is an
//! [`MachineError`] naming the offending field, never a panic. The schema is
//! documented in `docs/machine.md`; the built-ins live in `src/machines/*.toml`
//! and are embedded in the binary.
//!
//! Architectural constants of the ISA (a 32-byte block, a 256-byte vector
//! repeat, a 16 x 32-byte fractal) are not machine parameters; they are in
//! [`crate::isa`].

use crate::fault::Space as MemSpace;
use crate::syntax::line_col;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The default machine's name.
pub const DEFAULT_MACHINE: &str = "910b-like";

const BUILTINS: [(&str, &str); 2] = [
    ("910b-like", include_str!("machines/910b-like.toml")),
    ("910-like", include_str!("machines/910-like.toml")),
];

/// A validated machine description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Name shown in reports and matched by the bytecode header.
    pub name: String,
    /// One line for `tessera machine list`.
    pub description: String,
    /// `split` (cube and vector cores apart) or `coupled` (one core has both).
    pub organisation: Organisation,
    /// Clock of every core, GHz (cycles → µs in reports).
    pub clock_ghz: f64,
    /// Core counts.
    pub cores: Cores,
    /// Cube unit (`mmad`) costs and supported input dtypes.
    pub cube: Cube,
    /// Vector unit costs.
    pub vector: Vector,
    /// Capacities and alignments of the per-core buffers.
    pub memory: Memory,
    /// Per-core data-movement paths.
    pub dma: Dma,
    /// Chip-level global memory (HBM/L2) model.
    pub gm: Gm,
    /// Synchronisation resources.
    pub sync: Sync,
    /// Scalar unit costs.
    pub scalar: Scalar,
    /// Kernel launch costs.
    pub launch: Launch,
}

/// How cube and vector units are grouped into cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Organisation {
    /// Cube cores (AIC) and vector cores (AIV) are separate; they exchange data
    /// through GM and synchronise with cross-core flags.
    Split,
    /// Every AI core holds cube, vector and scalar units; L0C → UB is internal.
    Coupled,
}

/// Core counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cores {
    /// AI cores: cube cores (AIC) on a split machine, whole cores on a coupled one.
    pub ai_cores: u32,
    /// Vector cores (AIV) grouped with each AIC (split machines only: 1 or 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aiv_per_core: Option<u32>,
}

/// Cube unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cube {
    /// Fixed cost of every `mmad`.
    pub head_cycles: u32,
    /// f16 inputs (k0 = 16); absent = unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f16: Option<CubeDtype>,
    /// bf16 inputs (k0 = 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bf16: Option<CubeDtype>,
    /// f32 inputs (k0 = 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32: Option<CubeDtype>,
    /// i8 inputs, i32 accumulation (k0 = 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i8: Option<CubeDtype>,
}

/// Cost of one input dtype on the cube.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CubeDtype {
    /// Cycles per 16 × k0 × 16 fractal triple.
    pub cycles_per_fractal: u32,
}

/// Vector unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// Cycles added when an instruction starts on an idle vector unit.
    pub head_cycles: u32,
    /// Per-class costs.
    pub ops: VectorOps,
}

/// Cost of one class of vector instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCost {
    /// Pipe cycles per repeat.
    pub per_repeat: u32,
    /// Cycles after the pipe is done until other pipes (or a barrier) see the result.
    pub tail: u32,
}

macro_rules! vector_costs {
    ($( $(#[$doc:meta])* $key:ident => $class:ident, )*) => {
        /// A cost class of vector instructions: a key of `[vector.ops]`. Each
        /// vector instruction's class is declared in the instruction list
        /// (`isa`), or by its op (`BinOp::cost`, `UnOp::cost`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum VecCost { $( $(#[$doc])* $class, )* }

        impl VecCost {
            /// Every class, in the order of `[vector.ops]`.
            pub const ALL: &'static [VecCost] = &[$(VecCost::$class),*];
            /// The class's key in `[vector.ops]`.
            pub fn key(self) -> &'static str {
                match self { $(VecCost::$class => stringify!($key)),* }
            }
        }

        /// Per-class vector costs, one `[vector.ops]` key per [`VecCost`].
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct VectorOps { $( $(#[$doc])* pub $key: OpCost, )* }

        impl VectorOps {
            /// The cost of a class.
            pub fn get(&self, class: VecCost) -> OpCost {
                match class { $(VecCost::$class => self.$key),* }
            }
        }
    };
}

vector_costs! {
    /// Copies and fills (`vec.copy`, `vec.dup`).
    copy => Copy,
    /// Cheap unary ops (`abs`, `relu`, `rsqrt`, `rec`, `vec.iota`).
    unary => Unary,
    /// Tensor-scalar ops (`adds`, `muls`, `maxs`, `mins`).
    scalar => Scalar,
    /// Tensor-tensor ops (`add`, `sub`, `mul`, `max`, `min`) and across-repeat reductions.
    binary => Binary,
    /// Comparisons (`vec.cmp`, `vec.cmps`).
    compare => Compare,
    /// `vec.sel`.
    select => Select,
    /// `exp`.
    exp => Exp,
    /// `ln`.
    ln => Ln,
    /// `sqrt`.
    sqrt => Sqrt,
    /// `div`.
    div => Div,
    /// Conversions (`vec.cvt`).
    cast => Cast,
    /// Whole-repeat reductions (`rsum`, `rmax`, `rmin`).
    reduce => Reduce,
    /// Per-block reductions (`bsum`, `bmax`, `bmin`).
    block_reduce => BlockReduce,
    /// `vec.brcb`.
    broadcast => Broadcast,
    /// `vec.gather`.
    gather => Gather,
    /// `vec.trans` (one repeat is one 16 × 16 matrix of 16-bit elements).
    transpose => Transpose,
}

/// The largest machine description file read (1 MiB).
pub const MAX_DESCRIPTION_BYTES: u64 = 1 << 20;

/// Per-core buffers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Memory {
    pub l1: Space,
    pub l0a: Space,
    pub l0b: Space,
    pub l0c: Space,
    pub ub: Space,
}

/// Capacity and required alignment of one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Capacity in bytes.
    pub bytes: u64,
    /// Every instruction operand address must be a multiple of this.
    pub align: u64,
}

/// One data-movement path: a transfer costs `fixed_cycles + bytes / bytes_per_cycle`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Path {
    /// Per-core streaming rate.
    pub bytes_per_cycle: f64,
    /// Fixed cost of every transfer (for GM paths: when it touches a new GM line).
    pub fixed_cycles: u32,
}

/// Per-core data-movement paths; absent paths do not exist on the machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dma {
    /// MTE2 GM → L1.
    pub gm_to_l1: Path,
    /// MTE2 GM → UB.
    pub gm_to_ub: Path,
    /// MTE1 L1 → L0A.
    pub l1_to_l0a: Path,
    /// MTE1 L1 → L0B.
    pub l1_to_l0b: Path,
    /// FixPipe L0C → GM (split machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l0c_to_gm: Option<Path>,
    /// Vector pipe L0C → UB (coupled machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l0c_to_ub: Option<Path>,
    /// MTE3 UB → GM.
    pub ub_to_gm: Path,
    /// MTE3 UB → L1 (coupled machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ub_to_l1: Option<Path>,
}

/// A data-movement path, for byte accounting and costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathId {
    /// MTE2 GM → L1.
    GmToL1,
    /// MTE2 GM → UB.
    GmToUb,
    /// MTE1 L1 → L0A.
    L1ToL0a,
    /// MTE1 L1 → L0B.
    L1ToL0b,
    /// FixPipe L0C → GM.
    L0cToGm,
    /// Vector pipe L0C → UB.
    L0cToUb,
    /// MTE3 UB → GM.
    UbToGm,
    /// MTE3 UB → L1.
    UbToL1,
}

impl PathId {
    /// Every path, in report order.
    pub const ALL: [PathId; 8] = [
        PathId::GmToL1,
        PathId::GmToUb,
        PathId::L1ToL0a,
        PathId::L1ToL0b,
        PathId::L0cToGm,
        PathId::L0cToUb,
        PathId::UbToGm,
        PathId::UbToL1,
    ];
    /// Report name.
    pub fn name(self) -> &'static str {
        match self {
            PathId::GmToL1 => "GM->L1",
            PathId::GmToUb => "GM->UB",
            PathId::L1ToL0a => "L1->L0A",
            PathId::L1ToL0b => "L1->L0B",
            PathId::L0cToGm => "L0C->GM",
            PathId::L0cToUb => "L0C->UB",
            PathId::UbToGm => "UB->GM",
            PathId::UbToL1 => "UB->L1",
        }
    }
    /// The machine's parameters for the path (None if absent).
    pub fn params(self, m: &Machine) -> Option<Path> {
        let d = &m.dma;
        match self {
            PathId::GmToL1 => Some(d.gm_to_l1),
            PathId::GmToUb => Some(d.gm_to_ub),
            PathId::L1ToL0a => Some(d.l1_to_l0a),
            PathId::L1ToL0b => Some(d.l1_to_l0b),
            PathId::L0cToGm => d.l0c_to_gm,
            PathId::L0cToUb => d.l0c_to_ub,
            PathId::UbToGm => Some(d.ub_to_gm),
            PathId::UbToL1 => d.ub_to_l1,
        }
    }
    /// The memory spaces it moves from and to.
    pub fn spaces(self) -> (MemSpace, MemSpace) {
        match self {
            PathId::GmToL1 => (MemSpace::Gm, MemSpace::L1),
            PathId::GmToUb => (MemSpace::Gm, MemSpace::Ub),
            PathId::L1ToL0a => (MemSpace::L1, MemSpace::L0a),
            PathId::L1ToL0b => (MemSpace::L1, MemSpace::L0b),
            PathId::L0cToGm => (MemSpace::L0c, MemSpace::Gm),
            PathId::L0cToUb => (MemSpace::L0c, MemSpace::Ub),
            PathId::UbToGm => (MemSpace::Ub, MemSpace::Gm),
            PathId::UbToL1 => (MemSpace::Ub, MemSpace::L1),
        }
    }
}

/// Chip-level global memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gm {
    /// HBM bandwidth shared by every core.
    pub chip_bytes_per_cycle: f64,
    /// L2 line: the first touch of a line in a run (by any of its launches)
    /// costs chip bandwidth.
    pub line_bytes: u64,
    /// A burst whose GM address is not a multiple of this moves at `unaligned_factor`.
    pub aligned_bytes: u64,
    /// Speed factor of unaligned bursts.
    pub unaligned_factor: f64,
    /// Every burst's byte count is rounded up to a multiple of this for timing.
    pub burst_round_bytes: u64,
    /// Fixed cost of a GM transfer all of whose lines were already touched (L2 hit).
    pub l2_hit_fixed_cycles: u32,
}

/// Synchronisation resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// Event ids per (source pipe, destination pipe) pair.
    pub event_ids: u32,
    /// Depth of each pipe's instruction queue.
    pub queue_depth: u32,
    /// Pipe cycles of `sync.set`, `sync.wait` (once satisfied) and `sync.barrier`.
    pub sync_cycles: u32,
    /// Cross-core flag counters per core (0 on coupled machines).
    pub cross_core_flags: u32,
    /// A cross-core counter raised above this faults.
    pub cross_core_max_count: u32,
    /// Cycles from a cross-core set until the waiting core sees it.
    pub cross_core_latency: u32,
}

/// Scalar unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scalar {
    /// Cycles of every scalar instruction, including issuing one to a pipe.
    pub insn_cycles: u32,
    /// Cycles of a scalar load or store to UB.
    pub ub_load_cycles: u32,
    /// Cycles of a scalar load or store to GM.
    pub gm_load_cycles: u32,
}

/// Kernel launch costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// Cycles before the first block starts.
    pub launch_cycles: u64,
    /// Cycles between a core finishing one block and starting its next (extra waves).
    pub wave_cycles: u64,
}

/// A description that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineError {
    /// `E1001` syntax or type error, `E1002` invalid value, `E1003` unknown
    /// built-in name or unreadable file.
    pub code: &'static str,
    /// The offending field as a dotted path (`memory.ub.bytes`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Where in the description it is (byte span), with the description's
    /// text, when known (TOML syntax and type errors).
    pub at: Option<(std::ops::Range<usize>, String)>,
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "error[{}]: machine description field `{field}`: {}",
                self.code, self.message
            ),
            None => write!(
                f,
                "error[{}]: machine description: {}",
                self.code, self.message
            ),
        }
    }
}

impl std::error::Error for MachineError {}

/// Whether a machine name prints safely (reports, traces, `.tbc` headers,
/// `disasm`): at most 64 characters, none of them control characters.
pub(crate) fn printable_name(name: &str) -> bool {
    name.chars().count() <= 64 && !name.chars().any(char::is_control)
}

fn invalid(field: &str, message: impl Into<String>) -> MachineError {
    MachineError {
        code: "E1002",
        field: Some(field.to_string()),
        message: message.into(),
        at: None,
    }
}

impl Default for Machine {
    fn default() -> Self {
        match Machine::builtin(DEFAULT_MACHINE) {
            Some(m) => m,
            None => unreachable!("the default built-in machine is valid (tested)"),
        }
    }
}

impl Machine {
    /// Names of the built-in machines, default first.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTINS.iter().map(|(n, _)| *n).collect()
    }

    /// A built-in machine by name.
    pub fn builtin(name: &str) -> Option<Machine> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        Machine::from_toml(text).ok()
    }

    /// A built-in name, or else a path to a TOML description.
    pub fn load(name_or_path: &str) -> Result<Machine, MachineError> {
        if let Some(m) = Machine::builtin(name_or_path) {
            return Ok(m);
        }
        if !name_or_path.ends_with(".toml") && !name_or_path.contains('/') {
            return Err(MachineError {
                code: "E1003",
                field: None,
                message: format!(
                    "no built-in machine named `{name_or_path}` (built-ins: {}); a description file must end in .toml",
                    Machine::builtin_names().join(", ")
                ),
                at: None,
            });
        }
        // A description is a few KiB: read at most 1 MiB (a device or a
        // huge file is an error, not an allocation).
        let cannot = |why: String| MachineError {
            code: "E1003",
            field: None,
            message: format!("cannot read `{name_or_path}`: {why}"),
            at: None,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(name_or_path)
            .and_then(|f| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(f, MAX_DESCRIPTION_BYTES + 1),
                    &mut bytes,
                )
            })
            .map_err(|e| cannot(e.to_string()))?;
        if bytes.len() as u64 > MAX_DESCRIPTION_BYTES {
            return Err(cannot(format!(
                "larger than {MAX_DESCRIPTION_BYTES} bytes, more than a machine description needs"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            // The text up to the bad byte is the same in the lossy copy,
            // where the byte is U+FFFD: the error points at it.
            let at = e.utf8_error().valid_up_to();
            MachineError {
                at: Some((
                    at..at + char::REPLACEMENT_CHARACTER.len_utf8(),
                    String::from_utf8_lossy(e.as_bytes()).into_owned(),
                )),
                ..cannot(format!("not UTF-8 (invalid byte at offset {at})"))
            }
        })?;
        Machine::from_toml(&text)
    }

    /// Parses and validates a TOML description.
    pub fn from_toml(text: &str) -> Result<Machine, MachineError> {
        let m: Machine = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let name = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("missing field") || msg.starts_with("unknown field"));
            // The full path: an unknown key's own line names its table; a
            // missing key's error points into the header of the table
            // that lacks it.
            let at_key = e.span().and_then(|s| key_at(text, s.start));
            let table = e.span().and_then(|s| table_at(text, s.start));
            let field = match name {
                Some(n) => Some(match (&at_key, &table) {
                    (Some(k), _) if k.ends_with(n) => k.clone(),
                    // An unknown table: its header names it already.
                    (_, Some(t)) if t == n || t.ends_with(&format!(".{n}")) => t.clone(),
                    (_, Some(t)) => format!("{t}.{n}"),
                    _ => n.to_string(),
                }),
                None => at_key.or(table),
            };
            let at = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(text, s.start);
                    format!(" (line {line}, column {col})")
                })
                .unwrap_or_default();
            MachineError {
                code: "E1001",
                field,
                message: format!("{msg}{at}"),
                at: e.span().map(|s| (s, text.to_string())),
            }
        })?;
        m.validate().map_err(|mut e| {
            // Where the invalid value is: its key's line, or the line of
            // the nearest enclosing key or table the text has.
            if e.at.is_none()
                && let Some(span) = e.field.as_deref().and_then(|f| span_of(text, f))
            {
                let (line, col) = line_col(text, span.start);
                e.message = format!("{} (line {line}, column {col})", e.message);
                e.at = Some((span, text.to_string()));
            }
            e
        })?;
        Ok(m)
    }

    /// Where `field` (a dotted path, `memory.ub.align`) is in the TOML
    /// description `text`: its key's byte span, or the nearest enclosing
    /// key or table header the text has (an inline table holding it).
    pub fn field_span(text: &str, field: &str) -> Option<std::ops::Range<usize>> {
        span_of(text, field)
    }

    /// The description as TOML (`from_toml(to_toml(m)) == m`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print machine: {e}\n"))
    }

    /// A stable 64-bit fingerprint of every parameter (recorded in bytecode headers).
    pub fn fingerprint(&self) -> u64 {
        let text = serde_json::to_string(self).unwrap_or_default();
        crate::fnv::fnv1a(text.as_bytes())
    }

    /// Vector cores per group (0 on coupled machines).
    pub fn aiv_per_core(&self) -> u32 {
        match self.organisation {
            Organisation::Split => self.cores.aiv_per_core.unwrap_or(0),
            Organisation::Coupled => 0,
        }
    }

    /// Cube cost entry for an input dtype, if the cube supports it.
    pub fn cube_dtype(&self, dt: crate::isa::Dt) -> Option<&CubeDtype> {
        use crate::isa::Dt;
        match dt {
            Dt::F16 => self.cube.f16.as_ref(),
            Dt::Bf16 => self.cube.bf16.as_ref(),
            Dt::F32 => self.cube.f32.as_ref(),
            Dt::I8 => self.cube.i8.as_ref(),
            Dt::I32 | Dt::B8 => None,
        }
    }

    /// Peak cube MACs per cycle per cube core for an input dtype.
    pub fn cube_macs_per_cycle(&self, dt: crate::isa::Dt) -> Option<f64> {
        let c = self.cube_dtype(dt)?;
        let k0 = crate::isa::BLOCK_BYTES / dt.size();
        Some((16 * 16 * k0) as f64 / f64::from(c.cycles_per_fractal))
    }

    /// Number of cube cores (AIC, or AI cores on a coupled machine).
    pub fn cube_cores(&self) -> u32 {
        self.cores.ai_cores
    }

    /// Number of cores with a vector unit (AIV, or AI cores on a coupled machine).
    pub fn vector_cores(&self) -> u32 {
        match self.organisation {
            Organisation::Split => self.cores.ai_cores * self.aiv_per_core(),
            Organisation::Coupled => self.cores.ai_cores,
        }
    }

    /// The roofline bound of `machine.md`: `launch + max(cube, vector, GM)` cycles, where
    /// `cube_macs` lists (input dtype, MACs), `vector_cycles_min` is the vector work at
    /// full repeats and `gm_bytes_min` counts each input read once and each output written once.
    pub fn roofline(
        &self,
        cube_macs: &[(crate::isa::Dt, u64)],
        vector_cycles_min: f64,
        gm_bytes_min: u64,
    ) -> f64 {
        let cube: f64 = cube_macs
            .iter()
            .map(|&(dt, macs)| match self.cube_macs_per_cycle(dt) {
                Some(rate) => macs as f64 / (rate * f64::from(self.cube_cores())),
                None => f64::INFINITY,
            })
            .sum();
        let vector = vector_cycles_min / f64::from(self.vector_cores().max(1));
        let gm = gm_bytes_min as f64 / self.gm.chip_bytes_per_cycle;
        self.launch.launch_cycles as f64 + cube.max(vector).max(gm)
    }

    fn validate(&self) -> Result<(), MachineError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if !printable_name(&self.name) {
            return Err(invalid(
                "name",
                "must be at most 64 characters, none of them control characters",
            ));
        }
        // At least 1 MHz: reports divide cycles by the clock (a subnormal
        // clock made every time `inf us`).
        if !(self.clock_ghz.is_finite() && self.clock_ghz >= 0.001 && self.clock_ghz <= 100.0) {
            return Err(invalid(
                "clock_ghz",
                format!("must be in [0.001, 100], got {:?}", self.clock_ghz),
            ));
        }
        if self.cores.ai_cores == 0 || self.cores.ai_cores > 4096 {
            return Err(invalid(
                "cores.ai_cores",
                format!("must be in 1..=4096, got {}", self.cores.ai_cores),
            ));
        }
        match (self.organisation, self.cores.aiv_per_core) {
            (Organisation::Split, Some(1 | 2)) => {}
            (Organisation::Split, Some(n)) => {
                return Err(invalid(
                    "cores.aiv_per_core",
                    format!("must be 1 or 2 on a split machine, got {n}"),
                ));
            }
            (Organisation::Split, None) => {
                return Err(invalid(
                    "cores.aiv_per_core",
                    "is required on a split machine",
                ));
            }
            (Organisation::Coupled, Some(_)) => {
                return Err(invalid(
                    "cores.aiv_per_core",
                    "must be absent on a coupled machine",
                ));
            }
            (Organisation::Coupled, None) => {}
        }
        if self.cube.f16.is_none() {
            return Err(invalid("cube.f16", "the cube must support f16"));
        }
        for (name, c) in [
            ("f16", &self.cube.f16),
            ("bf16", &self.cube.bf16),
            ("f32", &self.cube.f32),
            ("i8", &self.cube.i8),
        ] {
            if let Some(c) = c
                && !(1..=64).contains(&c.cycles_per_fractal)
            {
                return Err(invalid(
                    &format!("cube.{name}.cycles_per_fractal"),
                    "must be in 1..=64",
                ));
            }
        }
        for &class in VecCost::ALL {
            let (name, c) = (class.key(), self.vector.ops.get(class));
            if !(1..=1024).contains(&c.per_repeat) {
                return Err(invalid(
                    &format!("vector.ops.{name}.per_repeat"),
                    "must be in 1..=1024",
                ));
            }
            if c.tail > 100_000 {
                return Err(invalid(
                    &format!("vector.ops.{name}.tail"),
                    "must be at most 100000",
                ));
            }
        }
        let mem = &self.memory;
        for (name, s) in [
            ("l1", mem.l1),
            ("l0a", mem.l0a),
            ("l0b", mem.l0b),
            ("l0c", mem.l0c),
            ("ub", mem.ub),
        ] {
            if !(s.align.is_power_of_two() && (32..=4096).contains(&s.align)) {
                return Err(invalid(
                    &format!("memory.{name}.align"),
                    format!("must be a power of two in 32..=4096, got {}", s.align),
                ));
            }
            if s.bytes == 0 || s.bytes > (64 << 20) || !s.bytes.is_multiple_of(s.align) {
                return Err(invalid(
                    &format!("memory.{name}.bytes"),
                    format!(
                        "must be a positive multiple of memory.{name}.align, at most 64 MiB; got {}",
                        s.bytes
                    ),
                ));
            }
        }
        let d = &self.dma;
        let mut paths = vec![
            ("dma.gm_to_l1", Some(d.gm_to_l1)),
            ("dma.gm_to_ub", Some(d.gm_to_ub)),
            ("dma.l1_to_l0a", Some(d.l1_to_l0a)),
            ("dma.l1_to_l0b", Some(d.l1_to_l0b)),
            ("dma.ub_to_gm", Some(d.ub_to_gm)),
        ];
        paths.extend([
            ("dma.l0c_to_gm", d.l0c_to_gm),
            ("dma.l0c_to_ub", d.l0c_to_ub),
            ("dma.ub_to_l1", d.ub_to_l1),
        ]);
        for (name, p) in paths {
            if let Some(p) = p {
                if !(p.bytes_per_cycle.is_finite()
                    && p.bytes_per_cycle >= 1.0
                    && p.bytes_per_cycle <= 1e6)
                {
                    return Err(invalid(
                        &format!("{name}.bytes_per_cycle"),
                        "must be in [1, 1e6]",
                    ));
                }
                if p.fixed_cycles > 1_000_000 {
                    return Err(invalid(
                        &format!("{name}.fixed_cycles"),
                        "must be at most 1000000",
                    ));
                }
            }
        }
        match self.organisation {
            Organisation::Split => {
                if d.l0c_to_gm.is_none() {
                    return Err(invalid(
                        "dma.l0c_to_gm",
                        "is required on a split machine (FixPipe)",
                    ));
                }
                if d.l0c_to_ub.is_some() {
                    return Err(invalid("dma.l0c_to_ub", "exists only on coupled machines"));
                }
                if d.ub_to_l1.is_some() {
                    return Err(invalid("dma.ub_to_l1", "exists only on coupled machines"));
                }
            }
            Organisation::Coupled => {
                if d.l0c_to_ub.is_none() {
                    return Err(invalid("dma.l0c_to_ub", "is required on a coupled machine"));
                }
                if d.l0c_to_gm.is_some() {
                    return Err(invalid(
                        "dma.l0c_to_gm",
                        "exists only on split machines (FixPipe)",
                    ));
                }
            }
        }
        let g = &self.gm;
        if !(g.chip_bytes_per_cycle.is_finite() && g.chip_bytes_per_cycle >= 1.0) {
            return Err(invalid("gm.chip_bytes_per_cycle", "must be at least 1"));
        }
        for (name, v) in [
            ("gm.line_bytes", g.line_bytes),
            ("gm.aligned_bytes", g.aligned_bytes),
            ("gm.burst_round_bytes", g.burst_round_bytes),
        ] {
            if !(v.is_power_of_two() && v <= 65536) {
                return Err(invalid(
                    name,
                    format!("must be a power of two up to 65536, got {v}"),
                ));
            }
        }
        // Fixed costs, at most a million cycles like the paths' (the cycle
        // limit stops a run long before one could overflow, but a slip of
        // the keyboard should be an error, not a run that faults).
        for (name, v) in [
            ("cube.head_cycles", self.cube.head_cycles),
            ("vector.head_cycles", self.vector.head_cycles),
            ("gm.l2_hit_fixed_cycles", g.l2_hit_fixed_cycles),
        ] {
            if v > 1_000_000 {
                return Err(invalid(name, format!("must be at most 1000000, got {v}")));
            }
        }
        if !(g.unaligned_factor > 0.0 && g.unaligned_factor <= 1.0) {
            return Err(invalid("gm.unaligned_factor", "must be in (0, 1]"));
        }
        let s = &self.sync;
        if !(1..=16).contains(&s.event_ids) {
            return Err(invalid(
                "sync.event_ids",
                format!("must be in 1..=16, got {}", s.event_ids),
            ));
        }
        if !(1..=1024).contains(&s.queue_depth) {
            return Err(invalid("sync.queue_depth", "must be in 1..=1024"));
        }
        if s.sync_cycles > 1000 {
            return Err(invalid("sync.sync_cycles", "must be at most 1000"));
        }
        match self.organisation {
            Organisation::Split => {
                if s.cross_core_flags > 16 {
                    return Err(invalid("sync.cross_core_flags", "must be at most 16"));
                }
                if s.cross_core_flags > 0 && !(1..=255).contains(&s.cross_core_max_count) {
                    return Err(invalid("sync.cross_core_max_count", "must be in 1..=255"));
                }
            }
            Organisation::Coupled => {
                // A coupled machine has no cross-core flags: all three are 0
                // (a latency or count there would be read as meaning something).
                for (name, v) in [
                    ("sync.cross_core_flags", s.cross_core_flags),
                    ("sync.cross_core_max_count", s.cross_core_max_count),
                    ("sync.cross_core_latency", s.cross_core_latency),
                ] {
                    if v != 0 {
                        return Err(invalid(name, "must be 0 on a coupled machine"));
                    }
                }
            }
        }
        if s.cross_core_latency > 1_000_000 {
            return Err(invalid(
                "sync.cross_core_latency",
                "must be at most 1000000",
            ));
        }
        let sc = &self.scalar;
        for (name, v) in [
            ("scalar.insn_cycles", sc.insn_cycles),
            ("scalar.ub_load_cycles", sc.ub_load_cycles),
            ("scalar.gm_load_cycles", sc.gm_load_cycles),
        ] {
            if !(1..=100_000).contains(&v) {
                return Err(invalid(name, format!("must be in 1..=100000, got {v}")));
            }
        }
        if self.launch.launch_cycles > 1 << 40 || self.launch.wave_cycles > 1 << 40 {
            return Err(invalid(
                "launch",
                "launch_cycles and wave_cycles must be at most 2^40",
            ));
        }
        Ok(())
    }
}

/// The dotted key of the `key = value` line at `offset` (with its `[table]`).
/// The table path up to the segment holding `offset`, when `offset` lies
/// in a `[table.header]` line (`[vector.ops.copy]` at `ops`: `vector.ops`).
fn table_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |p| p + 1);
    let line = text[line_start..].lines().next()?.trim_end();
    // `[table]`, or `[[table]]` (an array of tables).
    let brackets = if line.starts_with("[[") { 2 } else { 1 };
    let inner = line
        .get(brackets..line.len().checked_sub(brackets)?)
        .filter(|_| line.ends_with(&"]]"[..brackets]))?;
    // At a `[` itself: the whole table.
    let Some(at) = offset.checked_sub(line_start + brackets) else {
        return Some(inner.to_string());
    };
    let end = inner[at.min(inner.len())..]
        .find('.')
        .map_or(inner.len(), |i| at + i);
    let path = inner.get(..end)?;
    path.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        .then(|| path.to_string())
}

fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let line = text[line_start..].lines().next()?;
    let key = line.split('=').next()?.trim();
    if key.is_empty()
        || key.starts_with('[')
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    let table = before[..line_start].lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .map(str::to_string)
    });
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// The byte span of the key of `field` (a dotted path) in a TOML
/// description: the key whose table and dotted name make `field`, or else
/// the one making the longest prefix of it (an inline table holding the
/// field, or the table's header when the key is absent).
fn span_of(text: &str, field: &str) -> Option<std::ops::Range<usize>> {
    let name_chars = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    };
    let covers = |path: &str| field == path || field.starts_with(&format!("{path}."));
    let mut best: Option<(usize, std::ops::Range<usize>)> = None;
    let mut table = String::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let indent = line.len() - line.trim_start().len();
        let (path, len) = if let Some(header) = trimmed.strip_prefix('[') {
            let inner = header
                .trim_start_matches('[')
                .trim_end()
                .trim_end_matches(']')
                .trim();
            table = inner.to_string();
            (inner.to_string(), trimmed.len())
        } else {
            let key = line.split('=').next().unwrap_or("").trim();
            if !line.contains('=') || !name_chars(key) {
                start += line.len();
                continue;
            }
            let path = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            (path, key.len())
        };
        if name_chars(&path) && covers(&path) && best.as_ref().is_none_or(|(l, _)| path.len() > *l)
        {
            best = Some((path.len(), start + indent..start + indent + len));
        }
        start += line.len();
    }
    best.map(|(_, span)| span)
}
