//! The run report: cycles, per-pipe busy time and utilisation, bytes per path,
//! FLOPs; printed as a table or serialised as JSON.
//!
//! Utilisation of a pipe is its busy cycles summed over the cores that ran at
//! least one block and have that pipe, divided by (those cores × the kernel's
//! span, i.e. total cycles minus the launch cost).
//!
//! A program of several launches is reported as their sum: `cycles` = Σ
//! (launch cost + span); busy cycles, bytes, HBM bytes, FLOPs, instructions,
//! blocks and waves are summed; a pipe's utilisation is Σ busy / Σ (cores
//! with that pipe × span) over the launches, and its `cores` the most any
//! launch used. `launches` breaks the cycles down per launch; the table shows
//! that breakdown only when there are several launches, so a single-launch
//! report reads exactly as before launches existed.

use serde::Serialize;
use std::fmt::Write as _;

/// Busy time of one pipe kind over the chip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PipeReport {
    /// `MTE2`, `MTE1`, `CUBE`, `VECTOR`, `MTE3`, `FIX`, `SCALAR`.
    pub pipe: String,
    /// Busy cycles summed over cores.
    pub busy_cycles: u64,
    /// Cores that have the pipe and ran a block.
    pub cores: u32,
    /// `busy / (cores × span)`.
    pub utilisation: f64,
}

/// Bytes moved on one path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathBytes {
    /// `GM->L1`, `GM->UB`, `L1->L0A`, `L1->L0B`, `L0C->GM`, `L0C->UB`, `UB->GM`, `UB->L1`.
    pub path: String,
    /// Bytes (as requested, before rounding).
    pub bytes: u64,
}

/// One launch of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LaunchReport {
    /// Its logical blocks.
    pub block_dim: u32,
    /// Its waves (⌈block_dim / slots⌉).
    pub waves: u32,
    /// Its cycles: launch cost + span.
    pub cycles: u64,
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Machine name.
    pub machine: String,
    /// Kernel name.
    pub kernel: String,
    /// Logical blocks (summed over launches).
    pub block_dim: u32,
    /// Waves (⌈block_dim / slots⌉, summed over launches).
    pub waves: u32,
    /// Total cycles, launch costs included.
    pub cycles: u64,
    /// The launch costs included in `cycles` (summed over launches).
    pub launch_cycles: u64,
    /// `cycles` in µs at the machine's clock.
    pub micros: f64,
    /// Per pipe kind.
    pub pipes: Vec<PipeReport>,
    /// Per path.
    pub bytes: Vec<PathBytes>,
    /// HBM traffic (first touches of GM lines), bytes.
    pub hbm_bytes: u64,
    /// Cube FLOPs (2 per MAC).
    pub cube_flops: u64,
    /// Vector FLOPs (1 per active lane and operation).
    pub vector_flops: u64,
    /// Instructions executed (all units).
    pub instructions: u64,
    /// Whether numerics were skipped.
    pub timing_only: bool,
    /// Per launch, in order.
    pub launches: Vec<LaunchReport>,
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let timing = if self.timing_only {
            " (timing only)"
        } else {
            ""
        };
        if self.launches.len() > 1 {
            let _ = writeln!(
                s,
                "kernel {} on {}: {} launches, {} blocks in {} wave(s){timing}",
                self.kernel,
                self.machine,
                self.launches.len(),
                self.block_dim,
                self.waves,
            );
            for (i, l) in self.launches.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "launch {i:<3} {:>10} cycles  {} blocks in {} wave(s)",
                    l.cycles, l.block_dim, l.waves
                );
            }
        } else {
            let _ = writeln!(
                s,
                "kernel {} on {}: {} blocks in {} wave(s){timing}",
                self.kernel, self.machine, self.block_dim, self.waves,
            );
        }
        let _ = writeln!(
            s,
            "total  {} cycles = {:.3} us (launch {} cycles)",
            self.cycles, self.micros, self.launch_cycles
        );
        let _ = writeln!(
            s,
            "{:<8} {:>14} {:>6} {:>7}",
            "pipe", "busy cycles", "cores", "util"
        );
        for p in &self.pipes {
            let _ = writeln!(
                s,
                "{:<8} {:>14} {:>6} {:>6.1}%",
                p.pipe,
                p.busy_cycles,
                p.cores,
                p.utilisation * 100.0
            );
        }
        let _ = writeln!(s, "{:<8} {:>14}", "path", "bytes");
        for b in &self.bytes {
            let _ = writeln!(s, "{:<8} {:>14}", b.path, b.bytes);
        }
        let _ = writeln!(s, "{:<8} {:>14}", "HBM", self.hbm_bytes);
        let _ = writeln!(
            s,
            "flops    cube {} vector {}",
            self.cube_flops, self.vector_flops
        );
        let _ = writeln!(s, "instructions {}", self.instructions);
        s
    }
}
