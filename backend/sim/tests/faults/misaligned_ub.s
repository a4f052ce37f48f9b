; A vector operand that is not 32-byte aligned.
;@ expect: E0702
.kernel f
.result c f32[64]
.aiv
    vec.adds.f32 [16], [0], 1.0, 1, 64
    end
