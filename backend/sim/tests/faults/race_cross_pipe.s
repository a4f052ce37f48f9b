; The vector unit reads UB that MTE2 is still writing: no event orders them.
;@ expect: E0708
.kernel f
.param a f32[64]
.result c f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    vec.adds.f32 [256], [0], 1.0, 1, 64
    end
