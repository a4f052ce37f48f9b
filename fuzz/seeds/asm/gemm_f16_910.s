; Tiled f16 GEMM, c = cast(a @ b, f16), on the coupled 910-like machine.
;
; Each AI core takes 256 x 256 output tiles round-robin (its L0C holds 256 KiB
; of f32). Per tile, K is streamed in 256-deep L1 stages (A 256x256 and B
; 256x256, ND -> NZ, double-buffered in L1 with event ids 0/1), each in four
; 64-deep L0 steps (double-buffered in L0A/L0B). The epilogue moves L0C to UB
; through the vector pipe with the f16 cast, then MTE3 writes it to GM while
; the cube starts the next tile. Shapes: M % 256 == 0, N % 256 == 0, K % 512 == 0.
;@ tolerance: f16
.kernel gemm_f16
.machine 910-like
.equ M, 256
.equ N, 512
.equ K, 512
.equ TM, 256
.equ TN, 256
.equ TK, 256
.equ KS, 64
.equ NT, N / TN
.equ TILES, (M / TM) * (N / TN)
.equ A_STAGE, TM * TK * 2
.equ B_STAGE, TK * TN * 2
.equ L1A0, 0
.equ L1A1, A_STAGE
.equ L1B0, 2 * A_STAGE
.equ L1B1, 2 * A_STAGE + B_STAGE
.equ L0A1, TM * KS * 2
.equ L0B1, KS * TN * 2
.equ A_STEP, (KS / 16) * TM * 32
.equ B_STEP, KS * 32
.param a f16[M, K]
.param b f16[K, N]
.result c f16[M, N]
.block_dim 32

.core
    s.arg r1, 0
    s.arg r2, 1
    s.arg r3, 2
    s.sys r4, block_idx
    s.sys r5, block_dim
    ; every buffer starts free
    sync.set mte1, mte2, 0
    sync.set mte1, mte2, 1
    sync.set m, mte1, 0
    sync.set m, mte1, 1
    sync.set v, m, 0
    sync.set mte3, v, 0
    s.mov r6, r4                          ; t = block_idx
tile:
    s.br.ge r6, TILES, done
    s.div r7, r6, NT                      ; tile row
    s.rem r8, r6, NT                      ; tile column
    s.mul r9, r7, TM * K * 2
    s.add r9, r9, r1                      ; A: rows of this tile, K offset 0
    s.mul r10, r8, TN * 2
    s.add r10, r10, r2                    ; B: columns of this tile, K offset 0
    s.li r11, 0                           ; K stages done
    s.li r12, 1                           ; the next mmad initialises L0C
    sync.wait v, m, 0                     ; L0C is free
stage:
    ; ---------------- L1 stage, buffer 0 ----------------
    sync.wait mte1, mte2, 0
    mte2.nd2nz.gm.l1.f16 [L1A0], [r9], TM, TK, K * 2, TM
    mte2.nd2nz.gm.l1.f16 [L1B0], [r10], TK, TN, N * 2, TK
    sync.set mte2, mte1, 0
    s.add r9, r9, TK * 2
    s.add r10, r10, TK * N * 2
    sync.wait mte2, mte1, 0
    ; step 0 (L0 buffer 0)
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [L1A0], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [0], [L1B0], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], TM, KS, TN, r12
    s.li r12, 0
    sync.set m, mte1, 0
    ; step 1 (L0 buffer 1)
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [L0A1], [L1A0 + A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [L0B1], [L1B0 + B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [L0A1], [L0B1], TM, KS, TN, 0
    sync.set m, mte1, 1
    ; step 2 (L0 buffer 0)
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [L1A0 + 2 * A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [0], [L1B0 + 2 * B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], TM, KS, TN, 0
    sync.set m, mte1, 0
    ; step 3 (L0 buffer 1), then L1 buffer 0 is free
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [L0A1], [L1A0 + 3 * A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [L0B1], [L1B0 + 3 * B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 1
    sync.set mte1, mte2, 0
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [L0A1], [L0B1], TM, KS, TN, 0
    sync.set m, mte1, 1
    ; ---------------- L1 stage, buffer 1 ----------------
    sync.wait mte1, mte2, 1
    mte2.nd2nz.gm.l1.f16 [L1A1], [r9], TM, TK, K * 2, TM
    mte2.nd2nz.gm.l1.f16 [L1B1], [r10], TK, TN, N * 2, TK
    sync.set mte2, mte1, 1
    s.add r9, r9, TK * 2
    s.add r10, r10, TK * N * 2
    sync.wait mte2, mte1, 1
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [L1A1], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [0], [L1B1], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], TM, KS, TN, 0
    sync.set m, mte1, 0
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [L0A1], [L1A1 + A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [L0B1], [L1B1 + B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [L0A1], [L0B1], TM, KS, TN, 0
    sync.set m, mte1, 1
    sync.wait m, mte1, 0
    mte1.load.l0a.f16 [0], [L1A1 + 2 * A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [0], [L1B1 + 2 * B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], TM, KS, TN, 0
    sync.set m, mte1, 0
    sync.wait m, mte1, 1
    mte1.load.l0a.f16 [L0A1], [L1A1 + 3 * A_STEP], TM / 16, KS / 16, TM * 32
    mte1.load.l0b.t.f16 [L0B1], [L1B1 + 3 * B_STEP], KS / 16, TN / 16, TK * 32
    sync.set mte1, m, 1
    sync.set mte1, mte2, 1
    sync.wait mte1, m, 1
    cube.mmad.f16 [0], [L0A1], [L0B1], TM, KS, TN, 0
    sync.set m, mte1, 1
    s.add r11, r11, 2
    s.br.lt r11, K / TK, stage
    ; ---------------- epilogue: L0C -> f16 in UB (vector pipe) -> GM (MTE3) ----------------
    sync.set m, v, 0
    sync.wait m, v, 0
    sync.wait mte3, v, 0                  ; the UB output buffer is free
    vec.copy.l0c.ub.f16 [0], [0], TM, TN, TM, TN * 2, 0
    sync.set v, m, 0
    sync.set v, mte3, 0
    s.mul r13, r7, TM * N * 2
    s.mul r14, r8, TN * 2
    s.add r13, r13, r14
    s.add r13, r13, r3
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r13], [0], TM, TN * 2, TN * 2, N * 2
    sync.set mte3, v, 0
    s.add r6, r6, r5
    s.jmp tile
done:
    ; consume the initial "free" events
    sync.wait mte1, mte2, 0
    sync.wait mte1, mte2, 1
    sync.wait m, mte1, 0
    sync.wait m, mte1, 1
    sync.wait v, m, 0
    sync.wait mte3, v, 0
    end
