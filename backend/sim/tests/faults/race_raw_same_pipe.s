; A vector instruction reads the result of the previous one without a barrier.
;@ expect: E0709
.kernel f
.result c f32[64]
.aiv
    vec.dup.f32 [0], 2.0, 1, 64
    vec.muls.f32 [256], [0], 3.0, 1, 64
    end
