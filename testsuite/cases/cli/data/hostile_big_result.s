.kernel big
.param a f32[4]
.result c f32[536870912]
.aiv
    end
