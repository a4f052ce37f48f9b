; Two blocks write the same output bytes.
;@ expect: E0708
.kernel f
.result c f32[64]
.block_dim 2
.aiv
    s.arg r1, 0
    vec.dup.f32 [0], 1.0, 1, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r1], [0], 1, 256, 0, 0
    end
