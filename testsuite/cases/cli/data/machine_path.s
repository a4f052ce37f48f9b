; `.machine` names a path: a file's own text never chooses a file to read.
.kernel k
.machine bad_machine.toml
.result c f32[4]
.aiv
    end
