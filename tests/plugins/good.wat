;; A valid plugin in WAT: prints one gauge.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "# obsd-plugin-interface 1\n# HELP wat_answer The answer.\n# TYPE wat_answer gauge\nwat_answer{version=\"1\"} 42\n")
  (func (export "_start")
    ;; one iovec at 0: (pointer 64, length), written to fd 1 (stdout)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 107))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
