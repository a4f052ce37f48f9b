//! Reduce stages: `out[o, i] = reduce over r of input[o, r, i]` on the
//! vector unit, over a contiguous input seen as `[outer, reduced, inner]`.
//!
//! Two forms of one loop: *row* (`inner == 1`, [`Reduce::is_row`]): a tile is
//! `rows` rows × a chunk of the reduced axis (`pitch` elements per row);
//! *column* (`inner > 1`): a tile is a chunk of `rows` reduced rows ×
//! `pitch` kept columns. An axis longer than one tile is reduced in
//! `chunks` chunks accumulated in UB (a split reduction).

use super::{LocalBuf, View};
use crate::op::ReduceOp;
use crate::types::DType;

/// Lanes of one 256-byte vector repeat of the 4-byte accumulator.
pub const LANES: u64 = 64;

/// A reduction over the middle of `[outer, reduced, inner]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    /// The reduction (`mean` divides by `divisor` at the end).
    pub op: ReduceOp,
    /// The input, contiguous.
    pub input: View,
    /// The output, contiguous, `outer × inner` elements.
    pub out: View,
    /// Extent of the kept leading dims.
    pub outer: u64,
    /// Extent of the reduced dims.
    pub reduced: u64,
    /// Extent of the kept trailing dims.
    pub inner: u64,
    /// The accumulation dtype (f32 for floats, i32 for integers).
    pub acc: DType,
    /// The result is the reduction divided by this (the element count for a
    /// `mean`, else 1).
    pub divisor: u64,
    /// Tiles and buffers.
    pub schedule: ReduceSchedule,
}

impl Reduce {
    /// Whether the stage folds contiguous rows (`inner == 1`).
    pub fn is_row(&self) -> bool {
        self.inner == 1
    }
}

/// How a reduce stage is tiled.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ReduceSchedule {
    /// Row form: rows of a tile; column form: reduced rows of a chunk.
    pub rows: u64,
    /// Elements per tile row in UB (whole repeats in the row form).
    pub pitch: u64,
    /// Reduced elements per step.
    pub chunk: u64,
    /// Steps per tile (`⌈reduced / chunk⌉`).
    pub chunks: u64,
    /// Tiles of the whole output.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: ReduceLayout,
}

/// The UB buffers of a reduce stage (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ReduceLayout {
    /// The loaded tile (`in`, two copies).
    pub input: LocalBuf,
    /// The tile converted to the accumulator dtype, when the input's differs
    /// (`wide`).
    pub wide: Option<LocalBuf>,
    /// Row form: each row folded to one repeat of lanes (`lanes`).
    pub lanes: Option<LocalBuf>,
    /// One step's results (`part`).
    pub part: LocalBuf,
    /// The running results (`acc`).
    pub acc: LocalBuf,
    /// The finished results in the output dtype (`out`, two copies).
    pub out: LocalBuf,
}

impl ReduceLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        let mut out = vec![("in".to_string(), self.input)];
        if let Some(w) = self.wide {
            out.push(("wide".to_string(), w));
        }
        if let Some(l) = self.lanes {
            out.push(("lanes".to_string(), l));
        }
        out.push(("part".to_string(), self.part));
        out.push(("acc".to_string(), self.acc));
        out.push(("out".to_string(), self.out));
        out
    }
}
