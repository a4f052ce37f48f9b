; Row softmax, y = softmax(x, axis = -1) over f32[R, C] with C = 1024, on the
; split 910b-like machine (vector cores only).
;
; Tiles of 8 rows (32 KiB) go round-robin to the blocks; MTE2 -> V -> MTE3 is
; double-buffered in UB (the tile is normalised in place; buffer q is reloaded
; after MTE3 has stored it: event MTE3->MTE2 q). Per tile the vector unit
; folds each row's 16 repeats into one with an across-repeat max (2 cycles per
; repeat instead of 7 for a full reduction), reduces the 8 folded rows with one
; per-repeat max, broadcasts the 8 maxima to 32-byte blocks (brcb) and
; subtracts them with stride-0 operands; exp over the whole tile; the same
; two-level reduction for the sums; one reciprocal; and a multiply. Dependent
; vector instructions are separated by `sync.barrier v` (no RAW interlock).
; Shape: R % 8 == 0.
;@ tolerance: f32-reduction
.kernel softmax_f32
.machine 910b-like
.equ R, 128
.equ C, 1024
.equ ROW, C * 4
.equ TB, 8 * ROW
.equ TILES, R / 8
.equ X0, 0
.equ X1, TB
.equ W, 2 * TB
.equ RED, W + 2048
.equ MB, RED + 256
.equ SB, MB + 256
.param x f32[R, C]
.result y f32[R, C]
.block_dim 8

.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.sys r4, block_idx
    s.sys r5, block_dim
    s.mul r6, r5, TB                      ; bytes between this block's tiles
    s.mul r7, r4, TB                      ; byte offset of the current tile
    s.mov r8, r4                          ; tile index
    sync.set mte3, mte2, 0
    sync.set mte3, mte2, 1
loop:
    s.br.ge r8, TILES, done
    ; ---- buffer 0 ----
    s.add r9, r1, r7
    s.add r10, r2, r7
    sync.wait mte3, mte2, 0
    mte2.copy.gm.ub [X0], [r9], 1, TB, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    ; row maxima: fold each row's 16 repeats into one (amax), then reduce the folded rows (rmax)
    vec.amax.f32 [W + 0 * 256], [X0 + 0 * ROW], C / 64, 64
    vec.amax.f32 [W + 1 * 256], [X0 + 1 * ROW], C / 64, 64
    vec.amax.f32 [W + 2 * 256], [X0 + 2 * ROW], C / 64, 64
    vec.amax.f32 [W + 3 * 256], [X0 + 3 * ROW], C / 64, 64
    vec.amax.f32 [W + 4 * 256], [X0 + 4 * ROW], C / 64, 64
    vec.amax.f32 [W + 5 * 256], [X0 + 5 * ROW], C / 64, 64
    vec.amax.f32 [W + 6 * 256], [X0 + 6 * ROW], C / 64, 64
    vec.amax.f32 [W + 7 * 256], [X0 + 7 * ROW], C / 64, 64
    sync.barrier v
    vec.rmax.f32 [RED], [W], 8, 64
    sync.barrier v
    vec.brcb.f32 [MB], [RED], 1
    sync.barrier v
    ; x - max (the max block is read with block and repeat strides 0)
    vec.sub.f32 [X0 + 0 * ROW], [X0 + 0 * ROW], [MB + 0 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 1 * ROW], [X0 + 1 * ROW], [MB + 1 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 2 * ROW], [X0 + 2 * ROW], [MB + 2 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 3 * ROW], [X0 + 3 * ROW], [MB + 3 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 4 * ROW], [X0 + 4 * ROW], [MB + 4 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 5 * ROW], [X0 + 5 * ROW], [MB + 5 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 6 * ROW], [X0 + 6 * ROW], [MB + 6 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X0 + 7 * ROW], [X0 + 7 * ROW], [MB + 7 * 32, 0, 0], C / 64, 64
    sync.barrier v
    vec.exp.f32 [X0], [X0], 8 * C / 64, 64
    sync.barrier v
    ; row sums, as the maxima
    vec.asum.f32 [W + 0 * 256], [X0 + 0 * ROW], C / 64, 64
    vec.asum.f32 [W + 1 * 256], [X0 + 1 * ROW], C / 64, 64
    vec.asum.f32 [W + 2 * 256], [X0 + 2 * ROW], C / 64, 64
    vec.asum.f32 [W + 3 * 256], [X0 + 3 * ROW], C / 64, 64
    vec.asum.f32 [W + 4 * 256], [X0 + 4 * ROW], C / 64, 64
    vec.asum.f32 [W + 5 * 256], [X0 + 5 * ROW], C / 64, 64
    vec.asum.f32 [W + 6 * 256], [X0 + 6 * ROW], C / 64, 64
    vec.asum.f32 [W + 7 * 256], [X0 + 7 * ROW], C / 64, 64
    sync.barrier v
    vec.rsum.f32 [RED], [W], 8, 64
    sync.barrier v
    vec.rec.f32 [RED], [RED], 1, 8
    sync.barrier v
    vec.brcb.f32 [SB], [RED], 1
    sync.barrier v
    ; e * (1 / sum)
    vec.mul.f32 [X0 + 0 * ROW], [X0 + 0 * ROW], [SB + 0 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 1 * ROW], [X0 + 1 * ROW], [SB + 1 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 2 * ROW], [X0 + 2 * ROW], [SB + 2 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 3 * ROW], [X0 + 3 * ROW], [SB + 3 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 4 * ROW], [X0 + 4 * ROW], [SB + 4 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 5 * ROW], [X0 + 5 * ROW], [SB + 5 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 6 * ROW], [X0 + 6 * ROW], [SB + 6 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X0 + 7 * ROW], [X0 + 7 * ROW], [SB + 7 * 32, 0, 0], C / 64, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r10], [X0], 1, TB, 0, 0
    sync.set mte3, mte2, 0
    s.add r7, r7, r6
    s.add r8, r8, r5
    s.br.ge r8, TILES, done
    ; ---- buffer 1 ----
    s.add r9, r1, r7
    s.add r10, r2, r7
    sync.wait mte3, mte2, 1
    mte2.copy.gm.ub [X1], [r9], 1, TB, 0, 0
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    ; row maxima: fold each row's 16 repeats into one (amax), then reduce the folded rows (rmax)
    vec.amax.f32 [W + 0 * 256], [X1 + 0 * ROW], C / 64, 64
    vec.amax.f32 [W + 1 * 256], [X1 + 1 * ROW], C / 64, 64
    vec.amax.f32 [W + 2 * 256], [X1 + 2 * ROW], C / 64, 64
    vec.amax.f32 [W + 3 * 256], [X1 + 3 * ROW], C / 64, 64
    vec.amax.f32 [W + 4 * 256], [X1 + 4 * ROW], C / 64, 64
    vec.amax.f32 [W + 5 * 256], [X1 + 5 * ROW], C / 64, 64
    vec.amax.f32 [W + 6 * 256], [X1 + 6 * ROW], C / 64, 64
    vec.amax.f32 [W + 7 * 256], [X1 + 7 * ROW], C / 64, 64
    sync.barrier v
    vec.rmax.f32 [RED], [W], 8, 64
    sync.barrier v
    vec.brcb.f32 [MB], [RED], 1
    sync.barrier v
    ; x - max (the max block is read with block and repeat strides 0)
    vec.sub.f32 [X1 + 0 * ROW], [X1 + 0 * ROW], [MB + 0 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 1 * ROW], [X1 + 1 * ROW], [MB + 1 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 2 * ROW], [X1 + 2 * ROW], [MB + 2 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 3 * ROW], [X1 + 3 * ROW], [MB + 3 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 4 * ROW], [X1 + 4 * ROW], [MB + 4 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 5 * ROW], [X1 + 5 * ROW], [MB + 5 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 6 * ROW], [X1 + 6 * ROW], [MB + 6 * 32, 0, 0], C / 64, 64
    vec.sub.f32 [X1 + 7 * ROW], [X1 + 7 * ROW], [MB + 7 * 32, 0, 0], C / 64, 64
    sync.barrier v
    vec.exp.f32 [X1], [X1], 8 * C / 64, 64
    sync.barrier v
    ; row sums, as the maxima
    vec.asum.f32 [W + 0 * 256], [X1 + 0 * ROW], C / 64, 64
    vec.asum.f32 [W + 1 * 256], [X1 + 1 * ROW], C / 64, 64
    vec.asum.f32 [W + 2 * 256], [X1 + 2 * ROW], C / 64, 64
    vec.asum.f32 [W + 3 * 256], [X1 + 3 * ROW], C / 64, 64
    vec.asum.f32 [W + 4 * 256], [X1 + 4 * ROW], C / 64, 64
    vec.asum.f32 [W + 5 * 256], [X1 + 5 * ROW], C / 64, 64
    vec.asum.f32 [W + 6 * 256], [X1 + 6 * ROW], C / 64, 64
    vec.asum.f32 [W + 7 * 256], [X1 + 7 * ROW], C / 64, 64
    sync.barrier v
    vec.rsum.f32 [RED], [W], 8, 64
    sync.barrier v
    vec.rec.f32 [RED], [RED], 1, 8
    sync.barrier v
    vec.brcb.f32 [SB], [RED], 1
    sync.barrier v
    ; e * (1 / sum)
    vec.mul.f32 [X1 + 0 * ROW], [X1 + 0 * ROW], [SB + 0 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 1 * ROW], [X1 + 1 * ROW], [SB + 1 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 2 * ROW], [X1 + 2 * ROW], [SB + 2 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 3 * ROW], [X1 + 3 * ROW], [SB + 3 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 4 * ROW], [X1 + 4 * ROW], [SB + 4 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 5 * ROW], [X1 + 5 * ROW], [SB + 5 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 6 * ROW], [X1 + 6 * ROW], [SB + 6 * 32, 0, 0], C / 64, 64
    vec.mul.f32 [X1 + 7 * ROW], [X1 + 7 * ROW], [SB + 7 * 32, 0, 0], C / 64, 64
    sync.set v, mte3, 1
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r10], [X1], 1, TB, 0, 0
    sync.set mte3, mte2, 1
    s.add r7, r7, r6
    s.add r8, r8, r5
    s.jmp loop
done:
    sync.wait mte3, mte2, 0
    sync.wait mte3, mte2, 1
    end
