;; Loops forever: stopped by its fuel budget or the wall-clock timeout.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))
