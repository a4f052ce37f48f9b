; A load that runs past the end of its tensor.
;@ expect: E0701
.kernel f
.param a f32[64]
.result c f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 512, 0, 0
    end
