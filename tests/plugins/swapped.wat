;; The plugin good.wat is replaced with in the reload test.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "# obsd-plugin-interface 1\n# HELP wat_swapped Present after the reload.\n# TYPE wat_swapped gauge\nwat_swapped{version=\"2\"} 7\n")
  (func (export "_start")
    ;; one iovec at 0: (pointer 64, length), written to fd 1 (stdout)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 123))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
