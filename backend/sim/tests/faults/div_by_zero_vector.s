; Vector i32 division by a zero lane.
;@ expect: E0700
.kernel f
.result c i32[64]
.aiv
    vec.dup.i32 [0], 5, 1, 64
    vec.dup.i32 [256], 0, 1, 64
    sync.barrier v
    vec.div.i32 [512], [0], [256], 1, 64
    end
