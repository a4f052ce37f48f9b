; line 1
.kernel k
.result c f32[4]
.aiv
    s.frobnicate r1, r2
    end
