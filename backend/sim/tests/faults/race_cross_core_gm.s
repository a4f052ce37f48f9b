; The cube core reads the workspace that a vector core writes, without a
; cross-core flag between them.
;@ expect: E0708
.kernel f
.result c f32[64]
.workspace 4096
.aic
    s.sys r1, workspace
    mte2.copy.gm.l1 [0], [r1], 1, 256, 0, 0
    end
.aiv
    s.sys r1, workspace
    s.sys r2, sub_block_idx
    s.br.ne r2, 0, skip
    vec.dup.f32 [0], 1.0, 1, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r1], [0], 1, 256, 0, 0
skip:
    end
