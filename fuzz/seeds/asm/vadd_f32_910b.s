; Vector add, c = a + b over f32[N], on the split 910b-like machine (vector cores only).
;
; The vector is cut into 8192-element (32 KiB) tiles handed out round-robin to
; the blocks. Each block runs a three-stage pipeline, MTE2 (load a, b) -> V (add)
; -> MTE3 (store c), double-buffered in UB (6 x 32 KiB = the whole UB): buffer
; q of a tile is reused two tiles later, guarded by events V->MTE2 q (a, b read)
; and MTE3->V q (c stored). Shape: N % 8192 == 0.
;@ tolerance: f32
.kernel vadd_f32
.machine 910b-like
.equ N, 49152
.equ T, 8192
.equ TB, T * 4
.equ TILES, N / T
.equ A0, 0
.equ B0, TB
.equ C0, 2 * TB
.equ A1, 3 * TB
.equ B1, 4 * TB
.equ C1, 5 * TB
.param a f32[N]
.param b f32[N]
.result c f32[N]
.block_dim 48

.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.arg r3, 2
    s.sys r4, block_idx
    s.sys r5, block_dim
    s.mul r6, r5, TB                      ; bytes between this block's tiles
    s.mul r7, r4, TB                      ; byte offset of the current tile
    s.mov r8, r4                          ; tile index
    sync.set v, mte2, 0
    sync.set v, mte2, 1
    sync.set mte3, v, 0
    sync.set mte3, v, 1
loop:
    s.br.ge r8, TILES, done
    ; ---- buffer 0 ----
    s.add r9, r1, r7
    s.add r10, r2, r7
    s.add r11, r3, r7
    sync.wait v, mte2, 0
    mte2.copy.gm.ub [A0], [r9], 1, TB, 0, 0
    mte2.copy.gm.ub [B0], [r10], 1, TB, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    sync.wait mte3, v, 0
    vec.add.f32 [C0], [A0], [B0], T / 64, 64
    sync.set v, mte2, 0
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r11], [C0], 1, TB, 0, 0
    sync.set mte3, v, 0
    s.add r7, r7, r6
    s.add r8, r8, r5
    s.br.ge r8, TILES, done
    ; ---- buffer 1 ----
    s.add r9, r1, r7
    s.add r10, r2, r7
    s.add r11, r3, r7
    sync.wait v, mte2, 1
    mte2.copy.gm.ub [A1], [r9], 1, TB, 0, 0
    mte2.copy.gm.ub [B1], [r10], 1, TB, 0, 0
    sync.set mte2, v, 1
    sync.wait mte2, v, 1
    sync.wait mte3, v, 1
    vec.add.f32 [C1], [A1], [B1], T / 64, 64
    sync.set v, mte2, 1
    sync.set v, mte3, 1
    sync.wait v, mte3, 1
    mte3.copy.ub.gm [r11], [C1], 1, TB, 0, 0
    sync.set mte3, v, 1
    s.add r7, r7, r6
    s.add r8, r8, r5
    s.jmp loop
done:
    sync.wait v, mte2, 0
    sync.wait v, mte2, 1
    sync.wait mte3, v, 0
    sync.wait mte3, v, 1
    end
