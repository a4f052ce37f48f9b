; A repeat count (from a register) above 255.
;@ expect: E0704
.kernel f
.result c f32[64]
.aiv
    s.li r1, 300
    vec.adds.f32 [0], [0], 1.0, r1, 64
    end
