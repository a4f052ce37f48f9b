//! Joined stages (split machines only): a cube matmul and the vector stage
//! next to it run in one mix launch, the vector stage on the vector cores
//! while the cube cores run the matmul, handing rows over through GM under
//! cross-core counters, in phases of rows (of the matmul's A or output,
//! flattened over the batches).
//!
//! - A **joined prologue** ([`CubeSchedule::prologue`]): a row stage of
//!   whole rows whose result is the matmul's A. Its phases are the first
//!   `prologue` rows, then twice as many, four times, … up to the last row
//!   ([`phase_ends`]). After each phase every vector core has written its
//!   rows; they meet at a cross-core barrier and signal their cube core. A
//!   cube core waits for phase `s`'s signal before its first unit at or
//!   after [`phase_starts`]`[s]`, the first unit (in the cube cores' order)
//!   that reads a row of phase `s` or later: a unit that reads rows up to
//!   phase `s` is at or after every `phase_starts[s']` with `s' ≤ s`, so its
//!   core has waited for all of them, whatever order the tiles take. The
//!   cube cores start as soon as the first phase is out and the row stage's
//!   work hides under the matmul's; each phase doubles so that the vector
//!   cores stay ahead of the cube.
//! - A **joined epilogue** ([`CubeSchedule::epilogue`]): a row stage of
//!   whole rows, or an elementwise stage over the matmul's `[rows, n]`
//!   result, that reads the result. Its phases are `epilogue` rows each
//!   ([`epilogue_ends`]). A cube core signals its vector cores for phase
//!   `s` at the top of its first unit at or after [`phase_writers`]`[s]`
//!   (every unit that writes a row of the phase comes before it), or after
//!   its last unit; the vector cores wait for their cube core's signal,
//!   meet at a cross-core barrier (so every cube core has signalled) and
//!   compute the phase's tiles — those whose rows all lie below the phase's
//!   end. Phases are equal: the last one's vector work is what the cube
//!   does not hide.
//!
//!   With a **ring** ([`CubeSchedule::ring`], a row stage only) the
//!   result's row `r` lives at row `r mod ring` of its buffer, two phases'
//!   worth: the vector cores meet again after reading a phase and signal
//!   their cube core, which waits, before its first unit writing a row of
//!   phase `s`, until phase `s − 2` has been read ([`ring_ok`] says where
//!   the phases follow the units' order, so that a unit's phase and these
//!   counts come from its first row). Both sides then stay within two
//!   phases of each other, so the phases are not limited to what a counter
//!   holds, and the product crosses HBM once per ring rather than whole.
//!
//! A vector stage is joined to one matmul at most.

use super::elementwise::space;
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

/// The rows ready after each phase of an epilogue of `size` of `rows` rows:
/// `size`, `2·size`, …, `rows`.
pub fn epilogue_ends(size: u64, rows: u64) -> Vec<u64> {
    if size == 0 {
        return Vec::new();
    }
    (1..=rows.div_ceil(size))
        .map(|p| (p * size).min(rows))
        .collect()
}

/// Per phase (of `ends`), the unit of the cube cores' loop before which
/// every unit that writes a row of that phase or an earlier one comes (`0`
/// when none does).
pub fn phase_writers(t: &CubeSchedule, g: &Geometry, ends: &[u64]) -> Vec<u64> {
    let (tm, tn) = (g.m.div_ceil(t.base_m), g.n.div_ceil(t.base_n));
    let units = g.batches() * tm * tn;
    let mut writers = vec![0; ends.len()];
    for u in 0..units {
        let (q, mi, _) = t.tile_at(u, tm, tn);
        let row0 = q * g.m + mi * t.base_m;
        // Every phase ending past the unit's first row waits for it.
        let first = ends.partition_point(|&e| e <= row0);
        for w in &mut writers[first..] {
            *w = u + 1;
        }
    }
    writers
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

/// Why stage `i` (a cube matmul with an epilogue) cannot take stage `i + 1`
/// as its joined epilogue, if it cannot: the stage after must be a row
/// stage of whole rows, or an elementwise stage over a `[rows, n]` space,
/// that reads the matmul's result row-major in order, tile by tile (not as
/// one row loaded once before its tiles: a repeated row, a held input),
/// and no other buffer the matmul writes; the matmul has no split-K and no strips, no joined
/// prologue, and there are at most [`MAX_PHASES`] phases.
pub fn check_epilogue(plan: &Plan, i: usize) -> Result<(), String> {
    let Some(StageKind::MatMul(mm)) = plan.stages.get(i).map(|s| &s.kind) else {
        return Err("the stage is not a matmul".into());
    };
    let MatMulSchedule::Cube(t) = &mm.schedule else {
        return Err("the matmul is not on the cube".into());
    };
    let g = Geometry::of(mm)?;
    let rows = g.batches() * g.m;
    let result = mm.out.buffer();
    let in_order = |v: &super::View| {
        v.buffer() == result
            && v.is_contiguous()
            && v.offset == mm.out.offset
            && v.elements() == rows * g.n
            && v.shape.last() == Some(&g.n)
    };
    // Apart from the result, the stages share no bytes one of them writes.
    let apart = |reads: &[&super::View], writes: &[&super::View]| {
        let theirs = [&mm.a.view, &mm.b.view, &mm.out];
        writes
            .iter()
            .all(|w| theirs.iter().all(|m| !overlap(plan, w, m)))
            && reads
                .iter()
                .all(|v| v.buffer() == result || !overlap(plan, v, &mm.out))
    };
    let reads_result = match plan.stages.get(i + 1).map(|s| &s.kind) {
        Some(StageKind::Rows(r)) => {
            let reads: Vec<&super::View> = r.inputs.iter().map(|x| &x.view).collect();
            apart(&reads, &[&r.out]) && {
                !r.schedule.transposed
                    && !r.schedule.chunked()
                    && r.outer == rows
                    && r.n == g.n
                    && r.inputs.iter().all(|x| {
                        x.view.buffer() != result || (in_order(&x.view) && !x.repeats_one_row())
                    })
                    && r.inputs.iter().any(|x| x.view.buffer() == result)
            }
        }
        Some(StageKind::Elementwise(e)) => {
            let (dims, strides) = space(&e.inputs, &e.out);
            let reads: Vec<&super::View> = e.inputs.iter().collect();
            let mut writes = vec![&e.out];
            writes.extend(e.also.iter().map(|(_, v)| v));
            apart(&reads, &writes)
                && dims == [rows, g.n]
                && e.inputs
                    .iter()
                    .zip(&strides)
                    .enumerate()
                    .all(|(k, (v, st))| {
                        let held = e.schedule.layout.inputs.get(k).is_none_or(|b| b.held);
                        v.buffer() != result || (in_order(v) && st.as_slice() == [g.n, 1] && !held)
                    })
                && e.inputs.iter().any(|v| v.buffer() == result)
        }
        _ => false,
    };
    let why = if t.epilogue == 0 {
        "there is no epilogue"
    } else if t.prologue > 0 || t.parts() > 1 || t.tail_parts > 1 || t.a_panel {
        "the matmul has a prologue, splits K, cuts its last round into strips or keeps an A panel"
    } else if result.is_none() || !reads_result {
        "the stage after does not read the matmul's result row by row"
    } else if t.ring == 0 && epilogue_ends(t.epilogue, rows).len() > MAX_PHASES {
        "more phases than a cross-core counter holds"
    } else if t.ring > 0 && !ring_ok(plan, i, t, &g) {
        "the ring is not two phases of whole tiles in the units' order, or the result is read elsewhere"
    } else {
        return Ok(());
    };
    Err(format!("epilogue={}: {why}", t.epilogue))
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
    } else if t.parts() > 1 || t.tail_parts > 1 || t.a_panel {
        "the matmul splits K, cuts its last round into strips or keeps an A panel"
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
    } else if r.inputs.iter().any(|x| overlap(plan, &x.view, &mm.out))
        || overlap(plan, &r.out, &mm.b.view)
        || overlap(plan, &r.out, &mm.out)
    {
        "the matmul writes a buffer the row stage reads, or reads one it writes"
    } else if ends.len() > MAX_PHASES {
        "more phases than a cross-core counter holds"
    } else if i >= 2 && is_epilogue_of(plan, i - 2) {
        "the row stage is the epilogue of the stage before it"
    } else {
        return Ok(());
    };
    Err(format!("prologue={}: {why}", t.prologue))
}

/// The rows of a tile of stage `j`, when it is a row or elementwise stage
/// (the kinds a joined epilogue may be).
pub fn tile_rows(plan: &Plan, j: usize) -> Option<u64> {
    match plan.stages.get(j).map(|s| &s.kind)? {
        StageKind::Rows(r) => Some(r.schedule.rows.max(1)),
        StageKind::Elementwise(e) => Some(e.schedule.rows.max(1)),
        StageKind::MatMul(_) | StageKind::Reduce(_) | StageKind::Transpose(_) => None,
    }
}

/// Whether matmul stage `i`'s epilogue may keep its result in a ring: the
/// ring is two phases; the stage after is a row or elementwise stage whose
/// tiles do not cross a phase; a phase is whole groups of tile rows, and
/// with batches a batch is too, so that the units write the phases in order
/// and no tile crosses a phase or the ring's end; the result is a workspace
/// buffer no other stage reads.
pub fn ring_ok(plan: &Plan, i: usize, t: &CubeSchedule, g: &Geometry) -> bool {
    let Some(rows) = tile_rows(plan, i + 1) else {
        return false;
    };
    let StageKind::MatMul(mm) = &plan.stages[i].kind else {
        return false;
    };
    let group = t.base_m * t.group_m.max(1);
    let result = mm.out.buffer();
    let workspace = result
        .and_then(|b| plan.buffers.get(b))
        .is_some_and(|b| matches!(b.kind, super::BufKind::Workspace { .. }));
    let read_elsewhere = plan
        .stages
        .iter()
        .enumerate()
        .any(|(j, s)| j != i + 1 && s.reads().iter().any(|v| v.buffer() == result));
    t.ring == 2 * t.epilogue
        && t.epilogue.is_multiple_of(rows)
        && t.epilogue.is_multiple_of(group)
        && (g.batches() == 1 || g.m.is_multiple_of(group))
        && g.c_row == g.n
        && workspace
        && !read_elsewhere
}

/// Whether two views' buffers share bytes: the same buffer, or workspace
/// buffers whose ranges meet.
pub fn overlap(plan: &Plan, a: &super::View, b: &super::View) -> bool {
    let (Some(x), Some(y)) = (a.buffer(), b.buffer()) else {
        return false;
    };
    if x == y {
        return true;
    }
    let range = |id: usize| {
        plan.buffers.get(id).and_then(|buf| match buf.kind {
            super::BufKind::Workspace { offset } => Some((offset, offset + plan.footprint(id))),
            super::BufKind::Param(_) | super::BufKind::Result(_) => None,
        })
    };
    matches!((range(x), range(y)), (Some((a0, a1)), Some((b0, b1))) if a0 < b1 && b0 < a1)
}

/// Whether stages `i` and `j` may run in either order: neither writes
/// bytes the other reads or writes.
pub fn independent(plan: &Plan, i: usize, j: usize) -> bool {
    let (a, b) = (&plan.stages[i], &plan.stages[j]);
    let clash = |w: &super::Stage, o: &super::Stage| {
        w.writes().iter().any(|x| {
            o.reads()
                .iter()
                .chain(o.writes().iter())
                .any(|y| overlap(plan, x, y))
        })
    };
    !clash(a, b) && !clash(b, a)
}

/// Whether stage `i` is a cube matmul with a joined epilogue.
pub fn is_epilogue_of(plan: &Plan, i: usize) -> bool {
    matches!(
        plan.stages.get(i).map(|s| &s.kind),
        Some(StageKind::MatMul(m)) if matches!(&m.schedule, MatMulSchedule::Cube(t) if t.epilogue > 0)
    )
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

    #[test]
    fn an_epilogue_phase_waits_for_every_unit_that_writes_its_rows() {
        assert_eq!(epilogue_ends(64, 300), vec![64, 128, 192, 256, 300]);
        assert!(epilogue_ends(0, 300).is_empty());
        // The grouped order of `a_phase_starts_at_its_first_reader…`: group
        // `g` (units 4g to 4g + 3) writes tile rows 2g and 2g + 1, rows
        // 64g to 64g + 63.
        let t = CubeSchedule {
            base_m: 32,
            base_n: 128,
            group_m: 2,
            ..CubeSchedule::default()
        };
        let g = geometry(1, 300, 256);
        assert_eq!(
            phase_writers(&t, &g, &epilogue_ends(64, 300)),
            vec![4, 8, 12, 16, 20]
        );
        // Phases of 50 rows: tile row 1 (rows 32–63; units 1 and 3) starts
        // below 50, tile row 3 (units 5 and 7) below 100, tile row 4
        // (units 8 and 10) below 150, tile row 6 (units 12 and 14) below 200,
        // tile row 7 (units 13 and 15) below 250.
        assert_eq!(
            phase_writers(&t, &g, &epilogue_ends(50, 300)),
            vec![4, 8, 11, 15, 16, 20]
        );
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
            scale: None,
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
