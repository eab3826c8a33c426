;; Grows its memory by 1 MiB (16 pages) until something stops it: the memory limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (drop (memory.grow (i32.const 16)))
      (br $more))))
