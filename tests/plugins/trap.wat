;; Traps at once, as a Rust panic with panic=abort does.
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
