; Setting an event again before it was waited for.
;@ expect: E0705
.kernel f
.result c f32[64]
.aiv
    sync.set mte2, v, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    end
