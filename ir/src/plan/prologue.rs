//! A joined prologue (split machines only): a row stage of whole rows whose
//! result is the next stage's A — a cube matmul — runs in that matmul's
//! launch, on the vector cores, while the cube cores run the matmul.
//!
//! The row stage goes in phases of A's rows, flattened over the batches:
//! the first `prologue` rows ([`CubeSchedule::prologue`]), then twice as
//! many, four times, … up to the last row ([`phase_ends`]). After each
//! phase every vector core has written its rows; they meet at a cross-core
//! barrier and signal their cube core. A cube core waits for phase `s`'s
//! signal before its first unit at or after [`phase_starts`]`[s]`, the first
//! unit (in the cube cores' order) that reads a row of phase `s` or later:
//! a unit that reads rows up to phase `s` is at or after every
//! `phase_starts[s']` with `s' ≤ s`, so its core has waited for all of
//! them, whatever order the tiles take. The cube cores start as soon as the
//! first phase is out and the row stage's work hides under the matmul's;
//! each phase doubles so that the vector cores stay ahead of the cube.

use super::matmul::Geometry;
use super::{CubeSchedule, MatMulSchedule, Plan, StageKind, Width};

/// Most phases: a cube core's counter holds at most 15 pending signals.
pub const MAX_PHASES: usize = 15;

/// The rows ready after each phase of a prologue whose first phase has
/// `first` of `rows` rows: `first`, `3·first`, `7·first`, …, `rows`.
pub fn phase_ends(first: u64, rows: u64) -> Vec<u64> {
    let mut ends = Vec::new();
    if first == 0 {
        return ends;
    }
    let (mut size, mut end) = (first, 0u64);
    while end < rows {
        end = end.saturating_add(size).min(rows);
        ends.push(end);
        size = size.saturating_mul(2);
    }
    ends
}

/// Per phase (of `ends`), the first unit of the cube cores' loop that reads
/// a row of that phase or a later one (`units` when none does).
pub fn phase_starts(t: &CubeSchedule, g: &Geometry, ends: &[u64]) -> Vec<u64> {
    let (tm, tn) = (g.m.div_ceil(t.base_m), g.n.div_ceil(t.base_n));
    let units = g.batches() * tm * tn;
    let mut starts = vec![units; ends.len()];
    let mut reached = 0;
    for u in 0..units {
        let (q, mi, _) = t.tile_at(u, tm, tn);
        let row_end = q * g.m + ((mi + 1) * t.base_m).min(g.m);
        let s = ends.partition_point(|&e| e < row_end);
        while reached <= s && reached < ends.len() {
            starts[reached] = u;
            reached += 1;
        }
        if reached == ends.len() {
            break;
        }
    }
    starts
}

/// Why stage `i` (a cube matmul with a prologue) cannot take stage `i − 1`
/// as its joined prologue, if it cannot: the stage before must be a row
/// stage of whole rows whose full-width result, and nothing else, is this
/// stage's A, read row-major in order; the matmul has no split-K and no
/// strips; there are at most [`MAX_PHASES`] phases.
pub fn check(plan: &Plan, i: usize) -> Result<(), String> {
    let Some(StageKind::MatMul(mm)) = plan.stages.get(i).map(|s| &s.kind) else {
        return Err("the stage is not a matmul".into());
    };
    let MatMulSchedule::Cube(t) = &mm.schedule else {
        return Err("the matmul is not on the cube".into());
    };
    let prev = i
        .checked_sub(1)
        .and_then(|j| plan.stages.get(j))
        .map(|s| &s.kind);
    let Some(StageKind::Rows(r)) = prev else {
        return Err("the stage before is not a row stage".into());
    };
    let g = Geometry::of(mm)?;
    let ends = phase_ends(t.prologue, r.outer);
    let why = if t.prologue == 0 {
        "there is no prologue"
    } else if t.parts() > 1 || t.tail_parts > 1 {
        "the matmul splits K or cuts its last round into strips"
    } else if r.schedule.transposed || r.schedule.chunked() || r.out_width() != Width::Full {
        "the row stage does not keep whole rows, or writes per-row values"
    } else if r.out.buffer().is_none() || mm.a.view.buffer() != r.out.buffer() {
        "the matmul's A is not the row stage's result"
    } else if g.a_t
        || !mm.a.view.is_contiguous()
        || mm.a.view.offset != r.out.offset
        || g.k != r.n
        || g.batches() * g.m != r.outer
    {
        "the matmul does not read the rows in order"
    } else if r
        .inputs
        .iter()
        .any(|x| x.view.buffer().is_some() && x.view.buffer() == mm.out.buffer())
    {
        "the matmul writes a buffer the row stage reads"
    } else if ends.len() > MAX_PHASES {
        "more phases than a cross-core counter holds"
    } else {
        return Ok(());
    };
    Err(format!("prologue={}: {why}", t.prologue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_double_up_to_the_last_row() {
        assert_eq!(phase_ends(512, 8192), vec![512, 1536, 3584, 7680, 8192]);
        assert_eq!(phase_ends(100, 100), vec![100]);
        assert_eq!(phase_ends(64, 63), vec![63]);
        assert!(phase_ends(0, 10).is_empty());
    }

    fn geometry(batches: u64, m: u64, n: u64) -> Geometry {
        Geometry {
            batch: vec![batches],
            a_bs: vec![m * 64],
            b_bs: vec![0],
            c_bs: vec![m * n],
            m,
            k: 64,
            n,
            a_t: false,
            b_t: false,
            a_row: 64,
            b_row: n,
            c_row: n,
            dtype: crate::types::DType::F16,
            out: crate::types::DType::F32,
            relu: false,
        }
    }

    #[test]
    fn a_phase_starts_at_its_first_reader_in_the_tile_order() {
        // 300 rows in tiles of 32 (10 tile rows) × 2 tile columns, in
        // groups of 2 tile rows: units 0, 1, 2, 3 are (row, column) (0, 0),
        // (1, 0), (0, 1), (1, 1); unit 1 reads rows 32–63 (phase 1, up to
        // 96), unit 5 rows 96–127 (phase 2, up to 224), unit 13 rows
        // 224–255 (phase 3).
        let t = CubeSchedule {
            base_m: 32,
            base_n: 128,
            group_m: 2,
            ..CubeSchedule::default()
        };
        let ends = phase_ends(32, 300);
        assert_eq!(ends, vec![32, 96, 224, 300]);
        assert_eq!(
            phase_starts(&t, &geometry(1, 300, 256), &ends),
            vec![0, 1, 5, 13]
        );
        // Row-major over 2 batches of 100 rows (4 tile rows, the last of 4
        // rows) × 1 column: unit u reads up to row 32·(u % 4 + 1), capped
        // at 100, of batch u / 4.
        let t = CubeSchedule {
            base_m: 32,
            base_n: 128,
            ..CubeSchedule::default()
        };
        let ends = phase_ends(50, 200);
        assert_eq!(ends, vec![50, 150, 200]);
        // Unit 1 reads rows to 64 (> 50); unit 5 rows 132–163 (> 150).
        assert_eq!(
            phase_starts(&t, &geometry(2, 100, 128), &ends),
            vec![0, 1, 5]
        );
        // A phase no unit reaches past: every unit before it.
        assert_eq!(
            phase_starts(&t, &geometry(1, 100, 128), &[100, 200]),
            vec![0, 4]
        );
    }
}
