;; Prints the interface header, then a line that is not text exposition.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "# obsd-plugin-interface 1\nthis is { not exposition\n")
  (func (export "_start")
    ;; one iovec at 0: (pointer 64, length), written to fd 1 (stdout)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 51))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
