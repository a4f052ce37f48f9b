.kernel big
.param a f32[4294967296]
.result c f32[4]
.aiv
    end
