{
  "targets": [
    {
      "target_name": "ringmaster",
      "sources": [
        "native/addon.cc",
        "native/delivery.cc",
        "native/loop_wake.cc",
        "native/reaper.cc",
        "native/sched_slice.cc",
        "native/slot_cleanup.cc",
        "native/submission.cc",
        "native/uring_method.cc",
        "native/segment.cc",
        "native/robust_lock.cc",
        "native/process_table.cc",
        "native/io_handles.cc",
        "native/file_table.cc",
        "native/file_sync.cc",
        "native/uring.cc",
        "native/ring_test_hooks.cc",
        "native/thread_backend.cc",
        "native/completion_kinds.cc",
        "native/atomics.cc",
        "native/shared_wait.cc",
        "native/wait_queue.cc",
        "native/fault_injection.cc",
        "native/crc32c.cc",
        "native/buffer_pool.cc",
        "native/buffer_mapping.cc",
        "native/pin_records.cc",
        "native/napi_args.cc",
        "native/bufferpool_napi.cc",
        "native/wal_napi.cc",
        "native/wal_buffer.cc",
        "native/datadir_lock.cc",
        "native/datadir_lock_napi.cc",
        "native/file_sync_napi.cc",
        "native/js_bytes.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      # -flto with hidden visibility: the small functions each IO calls across files
      # (io_method, segment_accepts_io, the handle and lock helpers) are inlined, and calls
      # inside the addon skip the PLT (only napi_register_module_v1 is exported): 4-6 %
      # less CPU per cached 4 KiB read; -O3 over -O2 another 1-2 % (bench/results/qd1-s25/).
      "cflags_cc": ["-std=c++17", "-O3", "-flto=auto", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-pthread"],
      "ldflags": ["-pthread", "-flto=auto", "-O3"],
      "configurations": {
        "Debug": { "defines": ["RM_DEBUG"] }
      }
    }
  ]
}
