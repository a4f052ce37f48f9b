; A loop of full-width vector work on a small tensor meets the default work
; limit (2^26 units plus 4 096 per byte of GM: here 4 KiB, so 83 886 080
; lane operations, 5 141 of these instructions), not the cap of 2^37.
;@ expect: E0712
.kernel f
.result c i32[64]
.aiv
loop:
    vec.dup.i32 [0], 5, 255, 64
    sync.barrier v
    s.jmp loop
