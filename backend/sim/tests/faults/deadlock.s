; A wait for an event that nobody sets.
;@ expect: E0706
.kernel f
.result c f32[64]
.aiv
    sync.wait mte2, v, 3
    vec.adds.f32 [0], [0], 1.0, 1, 64
    end
