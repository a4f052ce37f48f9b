; An escape byte inside an operand: the message quotes it escaped.
.kernel k
.result c f32[4]
.aiv
    s.li r1, 1[31m
    end
