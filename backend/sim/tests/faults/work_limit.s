; Functional work past the run's work limit (lanes computed, counted per
; instruction): three 64-lane ops fit a limit of 160, the third passes it.
;@ expect: E0712
;@ work_limit: 160
.kernel f
.result c i32[64]
.aiv
    vec.dup.i32 [0], 5, 1, 64
    sync.barrier v
    vec.dup.i32 [256], 7, 1, 64
    sync.barrier v
    vec.add.i32 [512], [0], [256], 1, 64
    end
